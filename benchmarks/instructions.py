"""CPU instructions a row of `kontak import` (SQLite), and a create of
`POST /api/v1/contacts`, counted by valgrind's callgrind.

    python -m benchmarks.instructions [--rows 25000 --rows 75000] [--rejected] [--keep DIR]
    python -m benchmarks.instructions --creates [--count 200 --count 600]

This shared machine's clock moves by up to 2x from one day to the next, so seconds measured
on different days cannot be compared. Instructions can: callgrind counts what each process
executes, the same for the same code and input whatever else the machine does (to within
~1% here: hash seeds are fixed, but the CLI process's threads wait for segments in loops
whose turns depend on timing, and ids and timestamps vary). The figure is the
*marginal* cost of a row: the whole command's instructions at two sizes, their difference
divided by the difference in rows, so that the interpreter's start, the imports and the
per-file steps cancel out. It is split by process:

- the CLI process: the job's database work (the streamed write into SQLite, the
  duplicate checks, the commit), then the upkeep the command runs after the outcome is
  shown (planner statistics, the new rows' search index);
- the parsing child: it opens the file, forks the workers and relays what they staged;
- its forked workers: reading, checking and staging each row (summed).

``--creates`` counts a create the same way: `kontak serve` with one process (SQLite) from
its start to its end, with 200 and then 600 contacts created in between over HTTP, one at
a time on one keep-alive connection (the client is not counted). A create's figure holds
its sign-in, the framework, the route and its commit, and its share of the server's
background rounds (the search index's catch-up and the WAL's checkpoint, once a second:
the only part that moves with the machine's speed, by a few thousand instructions).

callgrind runs programs ~50x slower: the default sizes take about four minutes in all,
the creates about two and a half.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import write_csv
from benchmarks.harness import ORG, Figure, Kontak, Server, print_table
from kontak.import_job.stage import PARALLEL_FROM_ROWS

# Both sizes at least PARALLEL_FROM_ROWS: smaller files are checked in the parsing child
# itself, without workers, which would make the difference mean nothing.
DEFAULT_ROWS = (25_000, 75_000)
DEFAULT_CREATES = (200, 600)
STAGE_MODULE = "kontak.import_job.stage"
AFTER_FORK = "PyOS_AfterFork_Child"  # what CPython runs in a child of os.fork(), first


@dataclass(frozen=True, slots=True)
class Count:
    """Instructions of one import, by process."""

    cli: int
    parsing_child: int
    workers: int

    @property
    def total(self) -> int:
        return self.cli + self.parsing_child + self.workers


def available() -> bool:
    return shutil.which("valgrind") is not None


def count(kontak: Kontak, source: Path, out: Path) -> Count:
    """Run `kontak import` of ``source`` under callgrind; its instructions by process."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**kontak.env, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--trace-children=yes"),
            # A forked process starts with its parent's counts: zeroed as it starts, so
            # that the workers do not count what the parsing child did before forking.
            f"--zero-before={AFTER_FORK}",
            f"--callgrind-out-file={out}/callgrind.%p",
            *(sys.executable, "-m", "kontak.cli", "import", str(source), "--org", ORG),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):  # 1: rejected, which --rejected asks for
        raise RuntimeError(f"kontak import under callgrind failed:\n{done.stderr[-4000:]}")
    return _read(out)


def _read(out: Path) -> Count:
    """Sum each process's ``summary:`` line: its instructions since it started, or since
    it was zeroed after a fork (the ``totals:`` line then still holds some of what its
    callers had counted before). The parsing child is the stage module's first process (it
    was started by exec); its workers are forked from it, so they carry the same command
    line and later process ids. A profile without ``totals:`` was never finished."""
    cli, stage = 0, []
    for path in out.glob("callgrind.*"):
        text = path.read_text(errors="replace")
        command = re.search(r"^cmd:\s*(.*)$", text, re.M)
        summary = re.search(r"^summary:\s*(\d+)", text, re.M)
        finished = re.search(r"^totals:", text, re.M)
        pid = re.search(r"^pid:\s*(\d+)", text, re.M)
        if not (command and summary and finished and pid):
            raise RuntimeError(f"{path} is not a finished callgrind profile")
        if STAGE_MODULE in command.group(1):
            stage.append((int(pid.group(1)), int(summary.group(1))))
        else:
            cli += int(summary.group(1))
    if not stage:
        raise RuntimeError("no parsing child was profiled: did the import start one?")
    stage.sort()
    return Count(cli, stage[0][1], sum(n for _, n in stage[1:]))


def count_creates(kontak: Kontak, creates: int, out: Path) -> int:
    """Run `kontak serve` (one process) under callgrind while ``creates`` contacts are
    created one by one; its instructions from start to end."""
    out.mkdir(parents=True, exist_ok=True)
    port = random.randint(20_000, 29_999)
    process = subprocess.Popen(
        [
            *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p"),
            *(sys.executable, "-m", "kontak.cli", "serve", "--port", str(port)),
            *("--processes", "1"),
        ],
        env={**kontak.env, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(process, f"http://127.0.0.1:{port}", kontak.token)
    try:
        server.wait_ready(timeout_s=300)  # the interpreter's start takes ~50x as long
        with server.client(timeout=120) as http:
            for n in range(creates):
                body = {"name": f"Baru {n}", "phone": f"0899{10_000_000 + n:08d}"}
                http.post("/api/v1/contacts", json=body).raise_for_status()
    finally:
        process.send_signal(signal.SIGTERM)  # callgrind writes the profile as it ends
        process.wait(300)
    total = 0
    for path in out.glob("callgrind.*"):
        text = path.read_text(errors="replace")
        summary = re.search(r"^summary:\s*(\d+)", text, re.M)
        if not (summary and re.search(r"^totals:", text, re.M)):
            raise RuntimeError(f"{path} is not a finished callgrind profile")
        total += int(summary.group(1))
    return total


def create_figures(sizes: tuple[int, int] = DEFAULT_CREATES) -> list[Figure]:
    small, large = sorted(sizes)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        counts = {n: count_creates(Kontak(work / f"data{n}"), n, work / f"cg{n}") for n in sizes}
    creates = large - small
    per_create = (counts[large] - counts[small]) / creates / 1000
    return [
        Figure(
            "instructions a create, `POST /api/v1/contacts`, SQLite",
            creates,
            1,
            f"{per_create:.1f} k",
            f"`kontak serve`, one process, creates one at a time on one connection, sign-in "
            f"included; callgrind, ({large:,} creates - {small:,}) / {creates:,}",
        )
    ]


def figures(
    sizes: tuple[int, int] = DEFAULT_ROWS, *, rejected: bool = False, keep: Path | None = None
) -> list[Figure]:
    small, large = sorted(sizes)
    share = 0.01 if rejected else 0.0
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rows in (small, large):
            source = write_csv(work / f"{rows}.csv", rows, duplicates=share, invalid=share)
            kontak = Kontak(work / f"data{rows}")
            counts[rows] = count(kontak, source, work / f"callgrind{rows}")
            if keep is not None:  # for callgrind_annotate: where each process spent them
                shutil.copytree(work / f"callgrind{rows}", keep / f"{rows}", dirs_exist_ok=True)
    rows = large - small

    def per_row(part: str) -> float:
        more = int(getattr(counts[large], part)) - int(getattr(counts[small], part))
        return more / rows / 1000

    label = "instructions a row, `kontak import`, SQLite" + (
        " (1% dup + 1% invalid → rejected)" if rejected else ""
    )
    return [
        Figure(
            label,
            rows,
            1,
            f"{per_row('total'):.1f} k",
            f"CLI process (write, then upkeep) {per_row('cli'):.1f} k, parsing child "
            f"{per_row('parsing_child'):.1f} k, workers {per_row('workers'):.1f} k; "
            f"callgrind, ({large:,} rows - {small:,}) / {rows:,}; whole command at "
            f"{large:,} rows {counts[large].total / 1e9:.2f} G",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="two sizes (default 25k, 75k)")
    parser.add_argument("--rejected", action="store_true")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the profiles in DIR/<rows>/")
    parser.add_argument("--creates", action="store_true", help="count a create instead")
    parser.add_argument(
        "--count", type=int, action="append", help="--creates: two counts (default 200, 600)"
    )
    args = parser.parse_args()
    if not available():
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.creates:
        counts = tuple(args.count or DEFAULT_CREATES)
        if len(counts) != 2 or counts[0] == counts[1]:
            parser.error("give --count twice: two different numbers of creates")
        print_table(create_figures((counts[0], counts[1])))
        return
    sizes = tuple(args.rows or DEFAULT_ROWS)
    if len(sizes) != 2 or sizes[0] == sizes[1] or min(sizes) < PARALLEL_FROM_ROWS:
        parser.error(f"give --rows twice: two different sizes of {PARALLEL_FROM_ROWS:,} or more")
    print_table(figures((sizes[0], sizes[1]), rejected=args.rejected, keep=args.keep))


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
