"""`make bench`: the benchmark suite arrives with the performance issue; this says so."""

import sys

sys.stderr.write(
    "No benchmarks yet: they come with the performance work (see docs/benchmarks.md).\n"
)
