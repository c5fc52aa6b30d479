"""The downloadable report of an import: the file's own rows, each led by what is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from kontak.files.writers import write_csv, write_xlsx

PROBLEM_HEADER = "problem"


def write_report(
    path: Path, fmt: str, headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]
) -> None:
    """``rows`` are ``(problem, original cells)``; the header is ``problem`` + the file's."""
    header = [PROBLEM_HEADER, *headers]
    body = ([problem, *cells] for problem, cells in rows)
    if fmt == "xlsx":
        write_xlsx(path, header, body, sheet="Report", widths={0: 60})
    else:
        write_csv(path, header, body)
