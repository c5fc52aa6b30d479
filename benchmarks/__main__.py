"""`make bench`: every figure of the performance issue, printed as one table.

BENCH_ROWS (default 100,000) sets N; BENCH_RUNS (default 3) the runs per import figure;
BENCH_POSTGRES (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) adds
the PostgreSQL imports, searches, exports and creates, each on a database made and dropped
for it. BENCH_INSTRUCTIONS=0 leaves out the last figures, the CPU instructions a row of an
import and a create counted by callgrind (about seven minutes, whatever N; comparable
across days, unlike the clock). Each figure also has its own script (python -m benchmarks.<name> --help);
docs/benchmarks.md records results.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from benchmarks import create, export, import_file, instructions, search
from benchmarks.harness import Figure, print_table, seed, speed_probe


def main() -> None:
    rows = int(os.environ.get("BENCH_ROWS", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    postgres = os.environ.get("BENCH_POSTGRES") or None
    print(
        f"# {time.strftime('%Y-%m-%d')} · {platform.node()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · N={rows:,} · runs={runs} · {speed_probe()}",
        flush=True,
    )
    table: list[Figure] = []
    for fmt, rejected in (("csv", False), ("csv", True), ("xlsx", False)):
        table += import_file.figures(
            rows, runs, fmt=fmt, rejected=rejected, postgres=None if rejected else postgres
        )
        print_table(table[-2:] if postgres and not rejected else table[-1:])
    with tempfile.TemporaryDirectory() as tmp:
        kontak = seed(Path(tmp), rows)
        with kontak.serve() as server:
            for figures in (
                search.figures(kontak, server, rows, 200),
                export.figures(kontak, server, rows, runs),
                create.figures(kontak, server, 10, [1, 8, 32]),
            ):
                table += figures
                print_table(figures)
        if postgres:  # search and export on one PostgreSQL database seeded once
            kontak = seed(Path(tmp), rows, postgres)
            try:
                with kontak.serve() as server:
                    for figures in (
                        search.figures(kontak, server, rows, 200, "PostgreSQL"),
                        export.figures(kontak, server, rows, runs, "PostgreSQL"),
                        create.figures(kontak, server, 10, [1, 8, 32], "PostgreSQL"),
                    ):
                        table += figures
                        print_table(figures)
            finally:
                kontak.drop()
    if os.environ.get("BENCH_INSTRUCTIONS", "1") != "0":
        if instructions.available():
            figures = instructions.figures() + instructions.create_figures()
            table += figures
            print_table(figures)
        else:
            print("\n# no valgrind: the instructions figure is left out", flush=True)
    print_table(table)
    print(f"\n# at the end: {speed_probe()}", flush=True)


if __name__ == "__main__":
    main()
