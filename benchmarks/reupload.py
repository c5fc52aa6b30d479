"""Re-upload figures: with N contacts stored (imported by the CLI), the same file uploaded
again through a real `kontak serve`: rejected (every row matches a stored contact, the
commonest mistake with a big file), its full report as CSV, and the same file as
`on_existing=update`; each timed from the upload accepted to the end, with the server's
peak memory (all its processes). Not part of `make bench` (no target of the performance
issue); docs/benchmarks.md records its results.

    python -m benchmarks.reupload --rows 1000000 [--runs 3] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from benchmarks.generate import write_csv
from benchmarks.harness import Figure, Kontak, PeakRss, Server, median, print_table, seed


def _upload(server: Server, http: httpx2.Client, path: Path, mode: str) -> tuple[float, str]:
    """Seconds from the upload accepted to the job's end, and the job's id."""
    with path.open("rb") as f:
        response = http.post(
            "/api/v1/imports", files={"file": (path.name, f)}, data={"on_existing": mode}
        )
    response.raise_for_status()
    accepted = time.perf_counter()
    job_id = str(response.json()["id"])
    while True:
        job = http.get(f"/api/v1/imports/{job_id}").json()
        if job["status"] in ("completed", "rejected", "failed"):
            wanted = "rejected" if mode == "reject" else "completed"
            if job["status"] != wanted:
                raise RuntimeError(f"the {mode} re-upload ended {job['status']}: {job}")
            return time.perf_counter() - accepted, job_id
        time.sleep(0.05)


def figures(
    kontak: Kontak, server: Server, rows: int, runs: int, engine: str = "SQLite"
) -> list[Figure]:
    source = write_csv(kontak.work / "again.csv", rows)  # the seeded file, byte for byte
    results: dict[str, tuple[list[float], list[float], str]] = {}

    def measure(name: str, step: Callable[[], tuple[float, str]]) -> None:
        times, peaks = [], []
        detail = ""
        for _ in range(runs):
            with PeakRss(server.process.pid) as rss:
                took, detail = step()
            times.append(took)
            peaks.append(rss.pss_mb)
        results[name] = (times, peaks, detail)

    with server.client(timeout=1800) as http:
        jobs: list[str] = []

        def rejected() -> tuple[float, str]:
            took, job_id = _upload(server, http, source, "reject")
            jobs.append(job_id)
            return took, ""

        def report() -> tuple[float, str]:
            size = 0
            start = time.perf_counter()
            with http.stream(
                "GET", f"/api/v1/imports/{jobs[-1]}/report", params={"format": "csv"}
            ) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    size += len(chunk)
            return time.perf_counter() - start, f"{size / 1e6:.0f} MB"

        def updated() -> tuple[float, str]:
            return _upload(server, http, source, "update")[0], ""

        measure("re-upload, every row stored: rejected", rejected)
        measure("its report, CSV", report)
        measure("re-upload as on_existing=update", updated)
    source.unlink()
    out = []
    for name, (times, peaks, detail) in results.items():
        out.append(
            Figure(
                f"{name} ({engine})",
                rows,
                runs,
                f"{median(times):.2f} s",
                "; ".join(x for x in (detail, f"server peak PSS {max(peaks):.0f} MB") if x),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also on PostgreSQL")
    args = parser.parse_args()
    table: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        for url in (None, args.postgres) if args.postgres else (None,):
            kontak = seed(Path(tmp), args.rows, url)
            try:
                with kontak.serve() as server:
                    table += figures(
                        kontak, server, args.rows, args.runs, "PostgreSQL" if url else "SQLite"
                    )
            finally:
                kontak.drop()
            print_table(table)


if __name__ == "__main__":
    main()
