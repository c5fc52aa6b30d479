"""The instruction-count benchmark tells the processes of an import apart from callgrind's
profiles: the CLI, the parsing child (the stage module's exec'd process) and the workers
forked from it (the same command line, later process ids)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.instructions import Count, _read


def profile(folder: Path, pid: int, command: str, total: int | None) -> None:
    """A profile as callgrind writes it: header lines with ``summary:``, then costs, then
    ``totals:`` (absent while the process still runs; after a fork's zeroing, more than
    the summary: it is not what the benchmark reads)."""
    lines = [
        "# callgrind format",
        "version: 1",
        "creator: callgrind-3.19.0",
        f"pid: {pid}",
        f"cmd:  {command}",
        "part: 1",
        "events: Ir",
        f"summary: {total or 0}",
        "fn=(1) main",
        "0 12",
    ]
    if total is not None:
        lines.append(f"totals: {total + 5_000_000}")
    (folder / f"callgrind.{pid}").write_text("\n".join(lines) + "\n")


CLI = "/venv/bin/python -m kontak.cli import /tmp/75000.csv --org bench"
STAGE = "/venv/bin/python -m kontak.import_job.stage /tmp/data/imports/01J/spec.json"


def test_the_first_stage_process_is_the_parsing_child_and_the_later_ones_its_workers(
    tmp_path: Path,
) -> None:
    profile(tmp_path, 9001, STAGE, 700)  # workers first on disk: order must not matter
    profile(tmp_path, 8999, STAGE, 50)
    profile(tmp_path, 9002, STAGE, 900)
    profile(tmp_path, 8737, CLI, 10_000)

    count = _read(tmp_path)

    assert count == Count(cli=10_000, parsing_child=50, workers=1_600)
    assert count.total == 11_650


def test_a_profile_without_totals_is_refused(tmp_path: Path) -> None:
    profile(tmp_path, 8737, CLI, 10_000)
    profile(tmp_path, 8999, STAGE, None)  # killed before its end: its count is partial

    with pytest.raises(RuntimeError, match="not a finished callgrind profile"):
        _read(tmp_path)


def test_an_import_without_a_parsing_child_is_refused(tmp_path: Path) -> None:
    profile(tmp_path, 8737, CLI, 10_000)

    with pytest.raises(RuntimeError, match="no parsing child"):
        _read(tmp_path)
