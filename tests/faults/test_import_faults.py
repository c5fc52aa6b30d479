"""Imports under faults, through real processes: a server killed mid-import, and two
imports of overlapping files racing each other. Nothing is ever half-written."""

from __future__ import annotations

import json
import os
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
    settings: Settings, processes: int = 1, stderr: Any = subprocess.DEVNULL
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kontak.cli", "serve"),
            *("--port", str(port), "--processes", str(processes)),
        ],
        env=env_for(settings),
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


@pytest.mark.parametrize("moment", ["while parsing", "while streaming", "while writing"])
def test_server_killed_mid_import_leaves_no_contact_and_a_failed_job(
    settings: Settings, admin: Member, moment: str
) -> None:
    # "while streaming": the rows checked first are being written as the rest is checked
    # (import_job.stream); "while writing": streaming off, every row checked, the write
    # under way.
    settings = settings.model_copy(update={"stream_imports": moment != "while writing"})
    data = phones_csv(0, 200_000)
    headers = admin.headers
    with (
        server(settings) as (process, base),
        httpx2.Client(base_url=base, headers=headers, timeout=60) as http,
    ):
        job = http.post("/api/v1/imports", files={"file": ("big.csv", data)}).json()
        if moment == "while parsing":
            poll(
                http,
                job["id"],
                lambda j: j["status"] == "processing" and j["rows_processed"] >= 20_000,
            )
        elif moment == "while streaming":
            poll(
                http,
                job["id"],
                lambda j: j["status"] == "processing" and j["rows_processed"] >= 120_000,
            )
        else:
            poll(
                http,
                job["id"],
                lambda j: (
                    j["status"] == "processing"
                    and j["rows_total"] == 200_000
                    and j["rows_processed"] == 200_000
                ),
            )
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    with (
        server(settings) as (_, base),
        httpx2.Client(base_url=base, headers=headers, timeout=60) as http,
    ):
        ended = poll(http, job["id"], lambda j: j["status"] != "processing", timeout=30)
        listed = http.get("/api/v1/contacts", params={"limit": 1}).json()["items"]
        if ended["status"] == "completed":
            # The kill came after the commit: the job says so (it is written in the same
            # transaction as the contacts), and every row is there.
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
