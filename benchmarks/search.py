"""Search figures: with N contacts stored (SQLite; also PostgreSQL with --postgres),
`GET /api/v1/contacts` by exact phone, exact email, name prefix, name substring (common and
absent) and tag, p50/p95 over many requests from one keep-alive HTTP client on loopback,
against a real `kontak serve`.

    python -m benchmarks.search --rows 1000000 [--requests 200] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.generate import rows
from benchmarks.harness import Figure, Kontak, Server, median, percentile, print_table, seed


def figures(
    kontak: Kontak, server: Server, count: int, requests: int, engine: str = "SQLite"
) -> list[Figure]:
    sample = rows(count)
    target = sample[len(sample) // 2]
    first, last = target[0].split()
    queries = {
        "exact phone (as written in the file)": {"q": target[2]},
        "exact email": {"q": target[1]},
        "name prefix (4 letters)": {"q": first[:4]},
        "name substring (common)": {"q": last[2:6]},
        "name substring (no match)": {"q": "zqxw"},
        "tag filter": {"tag": "vip"},
        "first page, no filter": {},
    }
    out = []
    with server.client() as http:
        for label, params in queries.items():
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                response = http.get("/api/v1/contacts", params=params)
                times.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
            out.append(
                Figure(
                    f"GET /contacts ({engine}): {label}",
                    count,
                    requests,
                    f"p50 {median(times):.1f} ms",
                    f"p95 {percentile(times, 95):.1f} ms",
                    "p95 ≤ 20 ms" if count >= 1_000_000 else "",
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also on PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kontak = seed(Path(tmp), args.rows)
        with kontak.serve() as server:
            print_table(figures(kontak, server, args.rows, args.requests))
        if args.postgres:
            print_table(postgres_figures(Path(tmp), args.rows, args.requests, args.postgres))


def postgres_figures(work: Path, count: int, requests: int, admin_url: str) -> list[Figure]:
    kontak = seed(work, count, admin_url)
    try:
        with kontak.serve() as server:
            return figures(kontak, server, count, requests, "PostgreSQL")
    finally:
        kontak.drop()


if __name__ == "__main__":
    main()
