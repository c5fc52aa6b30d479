"""Time and peak memory of `kontak import` of a generated CSV, with the machine's floor.

Peak RSS is the largest sum, sampled every 20 ms, of the RSS of the import process and all
its descendants (the parsing child included).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.generate import write_csv


def tree_rss_kb(pid: int) -> int:
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def prepare(env: dict[str, str]) -> None:
    """A migrated database with the organization `bench` and its admin bench@contoh.id."""
    for args in (
        ["db", "upgrade"],
        [
            "user",
            "create",
            "bench@contoh.id",
            "--org",
            "bench",
            "--role",
            "admin",
            "--password",
            "benchmark",
        ],
    ):
        subprocess.run(
            [sys.executable, "-m", "kontak.cli", *args], env=env, check=True, capture_output=True
        )


def run_once(csv_path: Path, work: Path, database_url: str | None = None) -> tuple[float, int, int]:
    env = {**os.environ, "KONTAK_DATA_DIR": str(work), "NO_COLOR": "1"}
    env.pop("KONTAK_DATABASE_URL", None)
    if database_url:
        env["KONTAK_DATABASE_URL"] = database_url
    prepare(env)
    kontak = [sys.executable, "-m", "kontak.cli"]
    start = time.perf_counter()
    process = subprocess.Popen(
        [*kontak, "import", str(csv_path), "--org", "bench", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss_kb(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = process.communicate()
    sampler.join()
    elapsed = time.perf_counter() - start
    import json

    created = json.loads(out)["job"]["created"]
    return elapsed, peak, created


def sqlite_floor(csv_path: Path, work: Path) -> float:
    """`sqlite3 .import`-like floor: csv.reader + executemany into one table, one transaction."""
    import csv

    db = work / "floor.db"
    start = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (" + ",".join(f"c{i} TEXT" for i in range(13)) + ")")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        conn.executemany("INSERT INTO t VALUES (" + ",".join("?" * 13) + ")", reader)
    conn.commit()
    conn.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="also run on PostgreSQL: a fresh database is made through this admin URL "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) and dropped after",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        csv_path = write_csv(base / "contacts.csv", args.rows)
        results = []
        floors = []
        for i in range(args.runs):
            work = base / f"run{i}"
            work.mkdir()
            results.append(run_once(csv_path, work))
            floors.append(sqlite_floor(csv_path, work))
        times = [r[0] for r in results]
        peaks = [r[1] for r in results]
        med, floor = statistics.median(times), statistics.median(floors)
        print(f"rows={args.rows} runs={args.runs} created={results[0][2]}")
        print(f"kontak import (SQLite): median {med:.2f} s  ({args.rows / med:,.0f} rows/s)")
        print(f"floor csv+executemany:  median {floor:.2f} s  ratio {med / floor:.1f}x")
        print(f"peak RSS (all processes): max {max(peaks) / 1024:.0f} MB")
        if args.postgres:
            _postgres(args.postgres, csv_path, base, args.runs, args.rows)


def _postgres(admin_url: str, csv_path: Path, base: Path, runs: int, rows: int) -> None:
    """The same import on PostgreSQL, against COPY of the file into one table as floor."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    times, floors = [], []
    for i in range(runs):
        name = f"kontak_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.set(database=name).render_as_string(hide_password=False)
        try:
            work = base / f"pg{i}"
            work.mkdir()
            times.append(run_once(csv_path, work, url)[0])
            floors.append(
                _copy_floor(
                    make_url(url)
                    .set(drivername="postgresql")
                    .render_as_string(hide_password=False),
                    csv_path,
                )
            )
        finally:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    med, floor = statistics.median(times), statistics.median(floors)
    print(f"kontak import (PostgreSQL): median {med:.2f} s  ({rows / med:,.0f} rows/s)")
    print(f"floor COPY into one table:  median {floor:.2f} s  ratio {med / floor:.1f}x")


def _copy_floor(url: str, csv_path: Path) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE floor (" + ",".join(f"c{i} text" for i in range(13)) + ")")
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            csv_path.open("rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        return time.perf_counter() - start


if __name__ == "__main__":
    main()
