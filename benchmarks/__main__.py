"""`make bench`: every figure, at BENCH_ROWS rows (default 100,000); see docs/benchmarks.md."""

from __future__ import annotations

import os
import sys

from benchmarks import import_csv, server_figures

if __name__ == "__main__":
    rows = os.environ.get("BENCH_ROWS", "100000")
    runs = os.environ.get("BENCH_RUNS", "3")
    postgres = os.environ.get("BENCH_POSTGRES", "")  # an admin URL adds the PostgreSQL figures
    sys.argv = [sys.argv[0], "--rows", rows, "--runs", runs]
    if postgres:
        sys.argv += ["--postgres", postgres]
    import_csv.main()
    sys.argv = [sys.argv[0], "--rows", rows]
    server_figures.main()
