"""`make bench`: run the benchmarks and print their figures (see docs/benchmarks.md)."""

from __future__ import annotations

import os
import sys

from benchmarks import import_csv

if __name__ == "__main__":
    rows = os.environ.get("BENCH_ROWS", "100000")
    runs = os.environ.get("BENCH_RUNS", "3")
    sys.argv = [sys.argv[0], "--rows", rows, "--runs", runs]
    import_csv.main()
