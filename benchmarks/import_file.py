"""Import figures: a generated file uploaded to a real `kontak serve`, timed from the upload
accepted (202) to the job's end, with the peak RSS of all Kontak processes (the server,
its parsing child and workers) and the machine's floor for the same file in the same run.

    python -m benchmarks.import_file --rows 1000000 --runs 3 [--format xlsx] [--rejected]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Floors: SQLite, the `sqlite3` shell's `.import --csv` of the file into one table; PostgreSQL,
`COPY` of the file into one table. `--rejected` adds 1% duplicates and 1% invalid rows: the
job must end `rejected`, and the time includes fetching its full report.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from benchmarks.generate import HEADER, write_csv, write_xlsx
from benchmarks.harness import Figure, Kontak, PeakRss, median, plain_postgres_url, print_table


def measure(
    source: Path,
    work: Path,
    *,
    runs: int,
    rows: int,
    rejected: bool,
    postgres: str | None = None,
    env: Mapping[str, str] | None = None,
    server_log: Path | None = None,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(times from upload accepted, times with the upload, peak RSS sums, peak PSS sums, in
    MB) of ``runs`` imports into a fresh database each (``env``, ``server_log``: see
    :class:`Kontak`)."""
    times, totals, peaks, pss = [], [], [], []
    for run in range(runs):
        kontak = Kontak(work / f"run{run}", postgres, env=env, server_log=server_log)
        try:
            with kontak.serve() as server, server.client() as http:
                with PeakRss(server.process.pid) as rss:
                    took, total, job = server.import_file(source, http)
                    if rejected:
                        start = time.perf_counter()
                        report = http.get(f"/api/v1/imports/{job['id']}/report")
                        report.raise_for_status()
                        took += time.perf_counter() - start
                        total += time.perf_counter() - start
                expected = "rejected" if rejected else "completed"
                assert job["status"] == expected, job
                if not rejected:
                    assert job["created"] == rows, job
            times.append(took)
            totals.append(total)
            peaks.append(rss.mb)
            pss.append(rss.pss_mb)
        finally:
            kontak.drop()
    return times, totals, peaks, pss


def sqlite_floor(csv_path: Path, work: Path) -> float:
    db = work / "floor.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(["sqlite3", str(db), f".import --csv {csv_path} t"], check=True)
    return time.perf_counter() - start


def copy_floor(admin_url: str, csv_path: Path) -> float:
    import psycopg

    with psycopg.connect(plain_postgres_url(admin_url)) as conn:
        conn.execute("CREATE TEMP TABLE floor (" + ",".join(f"c{i} text" for i in HEADER) + ")")
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            csv_path.open("rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - start
        conn.rollback()
    return elapsed


def figures(
    rows: int, runs: int, *, fmt: str, rejected: bool, postgres: str | None
) -> list[Figure]:
    out = []
    share = 0.01 if rejected else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = write_csv(work / "contacts.csv", rows, duplicates=share, invalid=share)
        source = csv_path
        if fmt == "xlsx":
            source = write_xlsx(work / "contacts.xlsx", rows, duplicates=share, invalid=share)
        label = f"import {fmt.upper()}" + (
            " (1% dup + 1% invalid → rejected + report)" if rejected else ""
        )
        engines = [("SQLite", None)] + ([("PostgreSQL", postgres)] if postgres else [])
        for engine, url in engines:
            times, totals, peaks, pss = measure(
                source, work, runs=runs, rows=rows, rejected=rejected, postgres=url
            )
            floors = [
                copy_floor(url, csv_path) if url else sqlite_floor(csv_path, work)
                for _ in range(runs)
            ]
            took, floor = median(times), median(floors)
            floor_name = "COPY" if url else "sqlite3 .import"
            out.append(
                Figure(
                    f"{label}, {engine}",
                    rows,
                    runs,
                    f"{took:.2f} s",
                    f"{rows / took:,.0f} rows/s; with upload {median(totals):.2f} s; "
                    f"peak PSS {max(pss):.0f} MB (RSS sum {max(peaks):.0f} MB); "
                    f"floor ({floor_name} of the CSV) "
                    f"{floor:.2f} s, ratio {took / floor:.1f}x",
                    _target(rows, fmt, rejected, engine),
                )
            )
    return out


def _target(rows: int, fmt: str, rejected: bool, engine: str) -> str:
    if rows >= 1_000_000:
        if rejected:
            return "≤ 10 s"
        if fmt == "xlsx":
            return "≤ 20 s, ≤ 1.5 GB"
        return "≤ 10 s, ≤ 512 MB" if engine == "SQLite" else "≤ 12 s, ≤ 512 MB"
    if rows == 100_000 and not rejected:
        return "≤ 2.5 s" if fmt == "xlsx" else "≤ 1.5 s"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--rejected", action="store_true")
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    args = parser.parse_args()
    print_table(
        figures(
            args.rows,
            args.runs,
            fmt=args.format,
            rejected=args.rejected,
            postgres=args.postgres,
        )
    )


if __name__ == "__main__":
    main()
