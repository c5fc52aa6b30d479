"""Imports under faults, through real processes: a server killed mid-import, and two
imports of overlapping files racing each other. Nothing is ever half-written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kontak.config import Settings
from tests.factories import Member
from tests.server import free_port

pytestmark = pytest.mark.slow


def phones_csv(start: int, stop: int) -> bytes:
    lines = ["name,phone"] + [f"Kontak {i},0812{i:08d}" for i in range(start, stop)]
    return ("\r\n".join(lines) + "\r\n").encode()


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KONTAK_DATABASE_URL": settings.resolved_database_url,
        "KONTAK_DATA_DIR": str(settings.data_dir),
        "KONTAK_STREAM_IMPORTS": str(settings.stream_imports).lower(),
        "NO_COLOR": "1",
    }


@contextmanager
def server(
    settings: Settings, processes: int | None = 1, stderr: Any = subprocess.DEVNULL
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``kontak serve`` on a free port, with ``processes`` (None: as many as it chooses)."""
    port = free_port()
    env = env_for(settings)
    env.pop("KONTAK_WEB_PROCESSES", None)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kontak.cli", "serve", "--port", str(port)),
            *(("--processes", str(processes)) if processes else ()),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx2.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("kontak serve did not start")
        time.sleep(0.1)
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def poll(
    http: httpx2.Client, job_id: str, until: object, timeout: float = 120
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/imports/{job_id}").json()
        if until(job):  # type: ignore[operator]
            return dict(job)
        time.sleep(0.02)
    raise AssertionError(f"import {job_id} never reached the state waited for: {job}")


def is_over(job: dict[str, Any]) -> bool:
    """The job is over (a fast machine may end it between two polls: the kill then comes
    after the commit, which the test accepts)."""
    return job["status"] in ("completed", "rejected", "failed")


def stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the command name: [0] state, [1] parent, [11] user and
    [12] system clock ticks, [19] start time. OSError once the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def processes_under(pid: int) -> dict[int, tuple[int, int, bytes]]:
    """The processes descending from ``pid``: pid -> (parent, start time, command line)."""
    found: dict[int, tuple[int, int, bytes]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(int(entry.name))
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[19]), command)
    under: dict[int, tuple[int, int, bytes]] = {}
    parents = {pid}
    while parents:
        children = {p: info for p, info in found.items() if info[0] in parents}
        under.update(children)
        parents = set(children)
    return under


def parsing_workers(server_pid: int, timeout: float = 60) -> list[int]:
    """The parsing workers of the server's import, first worker first, once both run: the
    forked children of the parsing child (``kontak.import_job.stage``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        under = processes_under(server_pid)
        for pid, (_, _, command) in under.items():
            if b"kontak.import_job.stage" in command:
                workers = [
                    (start, p)
                    for p, (parent, start, cmd) in under.items()
                    if parent == pid and cmd == command
                ]
                if len(workers) == 2:
                    return [p for _, p in sorted(workers)]
        time.sleep(0.005)
    raise AssertionError("the import's parsing workers never started")


def wait_until_busy(pid: int, ticks: int = 3, timeout: float = 60) -> None:
    """Wait until process ``pid`` has used ``ticks`` clock ticks of CPU (what it does first
    is done: a worker asks to die with its parent before anything else)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = stat_fields(pid)
        if int(fields[11]) + int(fields[12]) >= ticks:
            return
        time.sleep(0.002)
    raise AssertionError(f"process {pid} never got going")


def wait_for_line(log: Path, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(encoding="utf-8"))
        if found:
            return found.group(0)
        time.sleep(0.01)
    raise AssertionError(f"the server never logged {pattern!r}: {log.read_text()[-2000:]}")


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = stat_fields(pid)[0]
        except OSError:
            return True
        if state == "Z":  # ended, its parent (init) not yet told
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("moment", ["while parsing", "while streaming", "while writing"])
def test_server_killed_mid_import_leaves_no_contact_and_a_failed_job(
    settings: Settings, admin: Member, moment: str, tmp_path: Path
) -> None:
    # "while streaming": the rows checked first are written as the rest is checked
    # (import_job.stream); "while writing": streaming off, every row checked, the write
    # under way.
    settings = settings.model_copy(update={"stream_imports": moment != "while writing"})
    data = phones_csv(0, 200_000)
    headers = admin.headers
    log = tmp_path / "serve.log"
    stopped: list[int] = []
    try:
        with (
            log.open("wb") as stderr,
            server(settings, stderr=stderr) as (process, base),
            httpx2.Client(base_url=base, headers=headers, timeout=60) as http,
        ):
            job = http.post("/api/v1/imports", files={"file": ("big.csv", data)}).json()
            if moment == "while parsing":
                poll(
                    http,
                    job["id"],
                    lambda j: is_over(j) or j["rows_processed"] >= 20_000,
                )
            elif moment == "while streaming":
                # Not a race against the clock (200k rows take ~2 s): the second worker is
                # stopped, so the file is never all checked, while the first worker's
                # segments are written as they come, into the open transaction.
                second = parsing_workers(process.pid)[1]
                wait_until_busy(second)
                os.kill(second, signal.SIGSTOP)
                stopped.append(second)
                wait_for_line(log, r"segment \d+ \(\d+ rows\) written")
                assert http.get(f"/api/v1/imports/{job['id']}").json()["status"] == "processing"
            else:
                poll(
                    http,
                    job["id"],
                    lambda j: is_over(j) or j["rows_processed"] == j["rows_total"] == 200_000,
                )
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        # The parsing child dies with the server, and its workers with it, even a stopped
        # one (before: the workers went on checking for nobody, or stayed stopped).
        for pid in stopped:
            assert gone(pid), f"parsing worker {pid} outlived the killed server"
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    with (
        server(settings) as (_, base),
        httpx2.Client(base_url=base, headers=headers, timeout=60) as http,
    ):
        ended = poll(http, job["id"], lambda j: j["status"] != "processing", timeout=30)
        listed = http.get("/api/v1/contacts", params={"limit": 1}).json()["items"]
        if ended["status"] == "completed":
            # The kill came after the commit: the job says so (it is written in the same
            # transaction as the contacts), and every row is there.
            assert moment != "while streaming"
            assert ended["created"] == 200_000
            assert listed
            return
        assert ended["status"] == "failed", ended
        assert "interrupted" in str(ended["message"])
        assert listed == []
        if moment != "while parsing":
            again = http.post("/api/v1/imports", files={"file": ("big.csv", data)}).json()
            done = poll(
                http,
                again["id"],
                lambda j: j["status"] in ("completed", "rejected", "failed"),
                timeout=240,
            )
            assert done["status"] == "completed", done
            assert done["created"] == 200_000


def test_server_killed_while_a_file_updates_stored_contacts_leaves_them_as_they_were(
    settings: Settings, admin: Member, tmp_path: Path
) -> None:
    # on_existing=update writes set-based statements over the stored contacts (bulk.py):
    # a kill in the middle of them must leave every contact as it was, and no new one.
    stored, new = 100_000, 1_000
    lines = ["name,phone,address"] + [
        f"Kontak {i},0812{i:08d},Jalan Baru {i}" for i in range(stored + new)
    ]
    changed = ("\r\n".join(lines) + "\r\n").encode()
    log = tmp_path / "serve.log"
    with (
        server(settings) as (_, base),
        httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http,
    ):
        first = http.post("/api/v1/imports", files={"file": ("a.csv", phones_csv(0, stored))})
        assert poll(http, first.json()["id"], is_over)["status"] == "completed"
        before = http.get("/api/v1/contacts/export", params={"format": "csv"}).content
    assert before.count(b"\n") == stored + 1

    with (
        log.open("wb") as stderr,
        server(settings, stderr=stderr) as (process, base),
        httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http,
    ):
        job = http.post(
            "/api/v1/imports",
            files={"file": ("b.csv", changed)},
            data={"on_existing": "update"},
        ).json()
        # Logged inside the write transaction, once the stored contacts are matched and
        # before anything of the file is written (~1 s of statements follow at 100k rows).
        wait_for_line(log, rf"{stored} rows match existing contacts")
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    with (
        server(settings) as (_, base),
        httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http,
    ):
        ended = poll(http, job["id"], lambda j: j["status"] != "processing", timeout=30)
        after = http.get("/api/v1/contacts/export", params={"format": "csv"}).content
        if ended["status"] == "completed":  # a very fast machine: the kill came after it
            assert (ended["created"], ended["updated"]) == (new, stored)
            assert after.count(b"Jalan Baru") == stored + new
            return
        assert ended["status"] == "failed", ended
        assert "interrupted" in str(ended["message"])
        assert after == before  # no contact changed, none added
        again = http.post(
            "/api/v1/imports",
            files={"file": ("b.csv", changed)},
            data={"on_existing": "update"},
        ).json()
        done = poll(http, again["id"], is_over, timeout=240)
        assert (done["status"], done["created"], done["updated"]) == ("completed", new, stored)
        assert (
            http.get("/api/v1/contacts/export", params={"format": "csv"}).content.count(
                b"Jalan Baru"
            )
            == stored + new
        )


def test_two_overlapping_imports_at_once_never_duplicate(
    settings: Settings, admin: Member, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    second = tmp_path / "second.csv"
    first.write_bytes(phones_csv(0, 3000))
    second.write_bytes(phones_csv(1500, 4500))
    barrier = threading.Barrier(2)
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(path: Path) -> None:
        barrier.wait()
        results[path.name] = subprocess.run(
            [sys.executable, "-m", "kontak.cli", "import", str(path), "--org", admin.org, "--json"],
            env=env_for(settings),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    threads = [threading.Thread(target=run, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    codes = sorted(r.returncode for r in results.values())
    assert codes == [0, 1], {k: (r.returncode, r.stderr[-500:]) for k, r in results.items()}
    loser = next(r for r in results.values() if r.returncode == 1)
    report = json.loads(loser.stdout)
    assert report["job"]["status"] == "rejected"
    assert len(report["duplicates"]["existing"]) == 1500
    assert {d["key"] for d in report["duplicates"]["existing"]} == {"phone"}

    from tests.conftest import count_contacts

    assert count_contacts(settings) == 3000


def test_the_server_logs_each_import_on_stderr(
    settings: Settings, admin: Member, tmp_path: Path
) -> None:
    # Before: kontak's INFO lines had no handler in `kontak serve`; only errors showed.
    log = tmp_path / "serve.log"
    with (
        log.open("wb") as stderr,
        server(settings, stderr=stderr) as (_, base),
        httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http,
    ):
        job = http.post("/api/v1/imports", files={"file": ("few.csv", phones_csv(0, 3))}).json()
        done = poll(http, job["id"], lambda j: j["status"] == "completed")
    assert done["created"] == 3
    text = log.read_text(encoding="utf-8")
    assert f"import {job['id']}: 3 rows read and checked" in text
    assert f"import {job['id']}: completed in" in text
