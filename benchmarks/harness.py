"""What every benchmark script shares: a prepared Kontak data folder, a real `kontak serve`
on loopback, peak RSS of a process tree, percentiles, and the results table.

Each figure is measured the way a user meets it: over HTTP against a real server (or with
the real CLI), never by calling functions in-process.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

ORG = "bench"
ADMIN = "bench@contoh.id"


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the results table."""

    figure: str
    n: int
    runs: int
    median: str
    detail: str = ""
    target: str = ""


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _field_kb(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and all its descendants, in KiB (pages shared by forked processes
    count once per process)."""
    return sum(_field_kb(f"/proc/{p}/status", "VmRSS:") for p in tree(pid))


def tree_pss_kb(pid: int) -> int:
    """PSS of the tree, in KiB: each shared page counted once in all (the memory the
    tree really holds)."""
    return sum(_field_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree(pid))


class PeakRss:
    """Samples a process tree's RSS sum every 50 ms and its PSS sum every ``pss_every_s``
    while in the ``with`` block.

    Reading PSS is not free: the kernel walks every mapped page of each process to share
    them out (~10 ms of CPU for a server, its parsing child and two workers in a 1M-row
    import, against ~0.7 ms for the RSS sum). Read every 50 ms it took ~15% of one core
    from the processes it measured (on two cores, ~0.9 s of a 12 s import)."""

    def __init__(self, pid: int, *, pss_every_s: float = 0.25) -> None:
        self.pid = pid
        self.pss_every_s = pss_every_s
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.cpu_s = 0.0  # the sampler's own CPU time (its thread), for the record
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.thread_time()
        pss_at = 0.0
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            now = time.monotonic()
            if now >= pss_at:
                self.peak_pss_kb = max(self.peak_pss_kb, tree_pss_kb(self.pid))
                pss_at = now + self.pss_every_s
            self.cpu_s = time.thread_time() - started
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak_kb / 1024

    @property
    def pss_mb(self) -> float:
        return self.peak_pss_kb / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def kontak(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kontak.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


class Kontak:
    """A data folder (SQLite, or a fresh PostgreSQL database) with the organization
    ``bench``, its admin and an API token."""

    def __init__(
        self,
        work: Path,
        postgres_admin_url: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        server_log: Path | None = None,
    ) -> None:
        """``env``: more variables for every command and the server (``PYTHONPATH`` runs
        another checkout's code, see ``benchmarks.pairs``); ``server_log``: the file that
        gets the server's log, instead of ``BENCH_SERVER_LOG``'s."""
        self.work = work
        self.env = {**os.environ, **(env or {}), "KONTAK_DATA_DIR": str(work), "NO_COLOR": "1"}
        self.env.pop("KONTAK_DATABASE_URL", None)
        self.server_log = server_log
        self._pg: tuple[str, str] | None = None
        if postgres_admin_url:
            self._pg = _create_database(postgres_admin_url)
            self.env["KONTAK_DATABASE_URL"] = self._pg[1]
        kontak(self.env, "db", "upgrade")
        kontak(
            self.env,
            *("user", "create", ADMIN, "--org", ORG, "--role", "admin"),
            *("--password", "benchmark"),
        )
        self.token = kontak(self.env, "token", "create", ADMIN).strip()

    @property
    def database_url(self) -> str | None:
        return self._pg[1] if self._pg else None

    def drop(self) -> None:
        if self._pg:
            _drop_database(*self._pg)
            self._pg = None

    @contextmanager
    def serve(self) -> Iterator[Server]:
        port = 18000 + random.randint(0, 1999)
        # kontak serve --processes (unset: its default, a process per core up to 4)
        processes = os.environ.get("BENCH_PROCESSES")
        # the server's log (imports' timings)
        log_path = self.server_log or os.environ.get("BENCH_SERVER_LOG")
        if log_path:  # beside a SQLite database's folder, or where nothing was made yet
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "kontak.cli", "serve"),
                *("--port", str(port)),
                *(("--processes", processes) if processes else ()),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        server = Server(process, f"http://127.0.0.1:{port}", self.token)
        try:
            server.wait_ready()
            yield server
        finally:
            process.terminate()
            process.wait(60)
            if log_path:
                log.close()  # type: ignore[union-attr]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: float = 600) -> httpx2.Client:
        return httpx2.Client(base_url=self.base, headers=self.headers, timeout=timeout)

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"kontak serve ended (exit code {self.process.returncode})")
            time.sleep(0.1)
        raise RuntimeError("kontak serve did not start")

    def import_file(
        self, path: Path, http: httpx2.Client
    ) -> tuple[float, float, dict[str, object]]:
        """Upload ``path`` and wait for the job's end: (seconds from upload accepted to the
        job's end, seconds including the upload, the job)."""
        start = time.perf_counter()
        with path.open("rb") as f:
            response = http.post("/api/v1/imports", files={"file": (path.name, f)})
        response.raise_for_status()
        accepted = time.perf_counter()
        job_id = response.json()["id"]
        while True:
            job = http.get(f"/api/v1/imports/{job_id}").json()
            if job["status"] in ("completed", "rejected", "failed"):
                end = time.perf_counter()
                return end - accepted, end - start, job
            time.sleep(0.05)


def _create_database(admin_url: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"kontak_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return plain, admin.set(database=name).render_as_string(hide_password=False)


def _drop_database(plain_admin: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plain_postgres_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# The machine's speed of the day: a pure-Python loop of 10M additions, median of 3. This
# shared VM's speed moves up to 2x from one day to the next (0.52 s on fast days, over
# 1 s on slow ones), so each recorded figure needs it beside it (docs/benchmarks.md).
# Run at a module's top level, as `python -c` ran it for the figures recorded since
# session 14: its variables are globals (in a function, locals, the loop takes ~40% less).
SPEED_LOOP = """
started = perf_counter()
total = 0
for i in range(10_000_000):
    total += i
took = perf_counter() - started
"""
FAST_DAY_S = 0.52


def speed_probe() -> str:
    """How long the 10M-addition loop takes now, with the fast days' figure."""
    took = []
    for _ in range(3):
        scope: dict[str, object] = {"perf_counter": time.perf_counter}
        exec(SPEED_LOOP, scope)  # our own constant, its variables globals
        took.append(float(scope["took"]))  # type: ignore[arg-type]
    return f"10M-addition loop {median(took):.2f} s (fast days: {FAST_DAY_S:.2f} s)"


def print_table(figures: list[Figure]) -> None:
    print()
    print("| figure | N | runs | median | detail | target |")
    print("|---|---|---|---|---|---|")
    for f in figures:
        print(f"| {f.figure} | {f.n:,} | {f.runs} | {f.median} | {f.detail} | {f.target} |")
    sys.stdout.flush()


def seed(work: Path, rows: int, postgres_admin_url: str | None = None) -> Kontak:
    """A Kontak (SQLite, or a fresh PostgreSQL database: drop it after) holding ``rows``
    generated contacts, imported with the CLI."""
    from benchmarks.generate import write_csv

    kontak = Kontak(work / ("pg" if postgres_admin_url else "data"), postgres_admin_url)
    source = write_csv(work / "seed.csv", rows)
    subprocess.run(
        [sys.executable, "-m", "kontak.cli", "import", str(source), "--org", ORG],
        env=kontak.env,
        check=True,
        capture_output=True,
    )
    source.unlink()
    return kontak
