"""Two versions of Kontak's import timed by turns: the working tree against a commit.

    python -m benchmarks.pairs REV [--pairs 3] [--rows 1000000] [--format xlsx]
        [--rejected] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--plain]
        [--no-probe]

This shared machine's speed moves by up to 2x from one day to the next and by ±10% from
one run to the next, so a change is judged by the ratio of the two versions' times measured
in turns, never by a figure from another day. ``REV`` (any commit git knows: ``HEAD``,
``main~3``, a hash) is checked out in a git worktree of its own, and its compiled parser
built (as `make native` does; ``--plain``: both versions run their parser as plain Python,
no build). The working tree runs as it is, uncommitted changes included (its compiled parser
built first when missing). Both versions are driven by this checkout's benchmark code, each
server on its own version's package (``PYTHONPATH``).

Each pair imports one generated file (made once) through a real ``kontak serve`` into a fresh
database, once with each version; odd pairs run ``REV`` first, even pairs the working tree
first, so that a drift of the machine's speed during the run weighs on both. Printed: each
pair's times (from the upload accepted to the job's end, as ``benchmarks.import_file``),
their ratio, the phases the server logged (rows read and checked; for a streamed write the
time its writer was busy and waiting), the median ratio, and the machine's speed at the
start and the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import write_csv, write_xlsx
from benchmarks.harness import median, speed_probe
from benchmarks.import_file import measure

ROOT = Path(__file__).resolve().parents[1]
CURRENT = "working tree"


@dataclass(frozen=True, slots=True)
class Version:
    """A version of the package to serve: its name and the variables that select it."""

    name: str
    env: dict[str, str]


@dataclass(frozen=True, slots=True)
class Phases:
    """What the server logged of one import (None where its log does not say)."""

    checked: float | None
    writing: float | None  # the streamed write's segments, summed
    waiting: float | None  # the streamed writer waiting for segments, summed

    def show(self) -> str:
        parts = []
        if self.checked is not None:
            parts.append(f"checked {self.checked:.2f} s")
        if self.writing is not None and self.waiting is not None:
            parts.append(f"writer busy {self.writing:.2f} s, waiting {self.waiting:.2f} s")
        return "; ".join(parts)


_CHECKED = re.compile(r"rows read and checked in ([\d.]+) s")
_SEGMENT = re.compile(r"segment \d+ \(\d+ rows\) written in ([\d.]+) s, after ([\d.]+) s waiting")


def phases(log: str) -> Phases:
    """The phases of the one import a server's log holds (``kontak.import``'s lines)."""
    checked = _CHECKED.search(log)
    segments = [(float(w), float(a)) for w, a in _SEGMENT.findall(log)]
    return Phases(
        float(checked.group(1)) if checked else None,
        sum(w for w, _ in segments) if segments else None,
        sum(a for _, a in segments) if segments else None,
    )


def order(pair: int, old: Version, new: Version) -> tuple[Version, Version]:
    """Which version runs first in pair ``pair`` (counted from 1): the old one in odd pairs."""
    return (old, new) if pair % 2 else (new, old)


@contextmanager
def checkout(rev: str, *, plain: bool) -> Iterator[Version]:
    """``rev`` in a git worktree of its own, with its compiled parser unless ``plain``;
    removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="kontak-pairs-"))
    tree = folder / "tree"
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev],
            check=True,
        )
        yield _version(rev, tree / "src", plain=plain)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def check_commit(rev: str) -> None:
    """SystemExit with a message when ``rev`` names no commit git knows."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"git knows no commit {rev!r} in {ROOT}: name one as git does (HEAD, main~3, a hash)."
        )


def working_tree(*, plain: bool) -> Version:
    return _version(CURRENT, ROOT / "src", plain=plain)


def _version(name: str, src: Path, *, plain: bool) -> Version:
    """The package under ``src``, its parser compiled (built when missing) unless ``plain``."""
    env = {"PYTHONPATH": str(src)}
    if plain:
        env["KONTAK_COMPILED_PARSER"] = "false"
    else:
        _build_native(env)
    return Version(name, env)


def _build_native(env: dict[str, str]) -> None:
    """Build the compiled parser of the package ``env`` selects (nothing when it exists)."""
    done = subprocess.run(
        [sys.executable, "-m", "kontak.native"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"could not build the compiled parser of {env['PYTHONPATH']}:\n{done.stderr}"
            "\nRun with --plain to compare both versions as plain Python."
        )


@dataclass(frozen=True, slots=True)
class Run:
    version: str
    took: float
    phases: Phases


def run_once(
    version: Version, source: Path, work: Path, *, rows: int, rejected: bool, postgres: str | None
) -> Run:
    """One import of ``source`` by ``version`` into a fresh database; its data folder is
    removed after."""
    log = work / "server.log"
    try:
        times, _totals, _peaks, _pss = measure(
            source,
            work,
            runs=1,
            rows=rows,
            rejected=rejected,
            postgres=postgres,
            env=version.env,
            server_log=log,
        )
        return Run(version.name, times[0], phases(log.read_text(errors="replace")))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(
    rev: str,
    *,
    pairs: int,
    rows: int,
    fmt: str,
    rejected: bool,
    postgres: str | None,
    plain: bool,
) -> list[tuple[Run, Run]]:
    """``pairs`` pairs of runs, each as (``rev``'s, the working tree's)."""
    share = 0.01 if rejected else 0.0
    results = []
    with tempfile.TemporaryDirectory() as tmp, checkout(rev, plain=plain) as old:
        work = Path(tmp)
        new = working_tree(plain=plain)
        source = write_csv(work / "contacts.csv", rows, duplicates=share, invalid=share)
        if fmt == "xlsx":
            source = write_xlsx(work / "contacts.xlsx", rows, duplicates=share, invalid=share)
        for pair in range(1, pairs + 1):
            done: dict[str, Run] = {}
            for version in order(pair, old, new):
                done[version.name] = run_once(
                    version,
                    source,
                    work / f"pair{pair}-{len(done)}",
                    rows=rows,
                    rejected=rejected,
                    postgres=postgres,
                )
                print(f"pair {pair}: {version.name} {done[version.name].took:.2f} s", flush=True)
            results.append((done[old.name], done[new.name]))
    return results


def table(rev: str, results: list[tuple[Run, Run]]) -> list[str]:
    """The results as a Markdown table, with the median ratio below it."""
    lines = [
        f"| pair | {rev} | {CURRENT} | ratio | {rev}'s phases | {CURRENT}'s phases |",
        "|---|---|---|---|---|---|",
    ]
    for number, (old, new) in enumerate(results, 1):
        lines.append(
            f"| {number} | {old.took:.2f} s | {new.took:.2f} s | {new.took / old.took:.3f} "
            f"| {old.phases.show()} | {new.phases.show()} |"
        )
    ratios = [new.took / old.took for old, new in results]
    lines.append("")
    lines.append(
        f"Median ratio ({CURRENT} / {rev}): {median(ratios):.3f} over {len(ratios)} pairs"
        f" (from {min(ratios):.3f} to {max(ratios):.3f})."
    )
    return lines


def _not_probed() -> str:
    return "speed not probed"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the commit to compare the working tree with (e.g. HEAD)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--rejected", action="store_true")
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    parser.add_argument("--plain", action="store_true", help="no compiled parser for either")
    parser.add_argument(
        "--no-probe", action="store_true", help="leave out the machine's speed at start and end"
    )
    args = parser.parse_args()
    check_commit(args.rev)
    engine = "PostgreSQL" if args.postgres else "SQLite"
    kind = args.format.upper() + (" (1% dup + 1% invalid → rejected)" if args.rejected else "")
    probe: Callable[[], str] = _not_probed if args.no_probe else speed_probe
    print(f"# {kind} import of {args.rows:,} rows, {engine}: {probe()}", flush=True)
    results = compare(
        args.rev,
        pairs=args.pairs,
        rows=args.rows,
        fmt=args.format,
        rejected=args.rejected,
        postgres=args.postgres,
        plain=args.plain,
    )
    print(f"# at the end: {probe()}")
    print()
    print("\n".join(table(args.rev, results)))


if __name__ == "__main__":
    main()
