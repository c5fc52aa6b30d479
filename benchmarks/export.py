"""Export figures: with N contacts stored (SQLite; also PostgreSQL with --postgres),
`GET /api/v1/contacts/export` as CSV (streamed) and XLSX, timed to the last byte, with the
server's peak memory, against a real `kontak serve`.

    python -m benchmarks.export --rows 1000000 [--runs 3] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure, Kontak, PeakRss, Server, median, print_table, seed


def figures(
    kontak: Kontak, server: Server, count: int, runs: int, engine: str = "SQLite"
) -> list[Figure]:
    out = []
    with server.client(timeout=900) as http:
        for fmt in ("csv", "xlsx"):
            times, peaks, size = [], [], 0
            for _ in range(runs):
                size = 0
                with PeakRss(server.process.pid) as rss:
                    start = time.perf_counter()
                    with http.stream(
                        "GET", "/api/v1/contacts/export", params={"format": fmt}
                    ) as response:
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                    times.append(time.perf_counter() - start)
                peaks.append(rss.pss_mb)
            took = median(times)
            out.append(
                Figure(
                    f"export {fmt.upper()} ({engine})",
                    count,
                    runs,
                    f"{took:.2f} s",
                    f"{count / took:,.0f} rows/s; {size / 1e6:.0f} MB; server peak PSS "
                    f"{max(peaks):.0f} MB",
                    ("≤ 10 s" if fmt == "csv" else "≤ 60 s") + ", ≤ 256 MB"
                    if count >= 1_000_000
                    else "",
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also on PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kontak = seed(Path(tmp), args.rows)
        with kontak.serve() as server:
            print_table(figures(kontak, server, args.rows, args.runs))
        if args.postgres:
            postgres = seed(Path(tmp), args.rows, args.postgres)
            try:
                with postgres.serve() as server:
                    print_table(figures(postgres, server, args.rows, args.runs, "PostgreSQL"))
            finally:
                postgres.drop()


if __name__ == "__main__":
    main()
