"""What every reader produces: the header row and a stream of numbered data rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on an uploaded file (from Settings); beyond them the file is rejected."""

    max_rows: int = 1_048_576
    max_columns: int = 1_000
    max_cell_chars: int = 10_000
    max_xlsx_uncompressed_bytes: int = 2 * 1024**3


@dataclass(slots=True)
class Table:
    """``rows`` yields ``(row number, cells)``; the header is row ``header_row`` (1 when the
    file starts with it). Blank rows are skipped but keep their numbers."""

    headers: list[str]
    header_row: int
    rows: Iterator[tuple[int, list[Any]]]
    estimated_rows: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    release: Callable[[], None] | None = None  # closes the file
    # The data rows again from the start, from what the reader holds in memory (a workbook):
    # a forked worker process reads its share of the rows with it, without a second load.
    reread: Callable[[], Iterator[tuple[int, list[Any]]]] | None = None

    def close(self) -> None:
        """Release the file, whether the rows were read to the end or not."""
        if self.release is not None:
            self.release()


def is_blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)
