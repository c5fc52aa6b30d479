"""Writing rows to CSV (streamed) and XLSX (XlsxWriter, constant memory), safely.

CSV cells that a spreadsheet would run as a formula (``= + - @``, tab, CR) get a leading
``'``; the importer strips one leading ``'``. XLSX cells are always written as text.

The CSV is written a column at a time (:func:`csv_lines`): a column that holds no cell to
escape or quote, as most do, is joined as it is, and only the others are looked at cell
by cell. The bytes are exactly those of ``csv.writer`` (minimal quoting, ``\\r\\n``) over
the escaped cells (``tests/unit/test_csv_lines.py`` proves it), at a fraction of its cost:
``csv.writer`` copies every character of every cell (~3 µs a contact row here, the largest
part of a million-row export).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from kontak.files import xlsx_sheet

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STARTS = frozenset(_FORMULA_START)
_QUOTED_FOR = (",", '"', "\r", "\n")
_NEEDS_QUOTES = re.compile('[,"\r\n]').search
# Joins a column's cells for the column-wide checks. A separator inside a cell can only
# make a check say "look closer" where it did not need to: every cell but the first starts
# right after one, so no cell to escape is missed.
_SEP = "\x00"
BATCH = 2000  # rows per chunk of csv_chunks


def escape_formula(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_column(cells: Sequence[str]) -> Sequence[str]:
    """One column's cells escaped (formula) and quoted as ``csv.writer`` quotes them."""
    joined = _SEP.join(cells)
    # Single characters are found by memchr, many times faster than pairs: the pair is
    # looked for only when its character is in the column at all.
    if joined.startswith(_FORMULA_START) or any(
        c in joined and _SEP + c in joined for c in _FORMULA_START
    ):
        cells = [("'" + c) if c[:1] in _STARTS else c for c in cells]
    special = [c for c in _QUOTED_FOR if c in joined]
    if not special:
        return cells
    if special == [","]:  # the usual one: commas in addresses, tags, handles
        return [('"' + c + '"') if "," in c else c for c in cells]
    return [('"' + c.replace('"', '""') + '"') if _NEEDS_QUOTES(c) else c for c in cells]


def csv_lines(columns: Sequence[Sequence[str]]) -> str:
    """The CSV lines (each ending in ``\\r\\n``) of the rows that ``columns`` hold, every
    column as long as the others."""
    if not columns or not columns[0]:
        return ""
    if len(columns) == 1:  # csv.writer quotes a row's lone empty cell
        return "".join(('""' if c == "" else c) + "\r\n" for c in csv_column(columns[0]))
    return "\r\n".join(map(",".join, zip(*map(csv_column, columns), strict=True))) + "\r\n"


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """UTF-8 (with BOM, so Excel reads it as UTF-8) CSV, yielded in chunks of many rows."""
    yield _header(header)
    source = iter(rows)
    while batch := list(islice(source, BATCH)):
        yield _rows_text(batch).encode("utf-8")


def csv_page_chunks(
    header: Sequence[str], pages: Iterable[Sequence[Sequence[str]]]
) -> Iterator[bytes]:
    """Like :func:`csv_chunks`, from pages of rows given as columns: a chunk a page."""
    yield _header(header)
    for columns in pages:
        yield csv_lines(columns).encode("utf-8")


def _header(header: Sequence[str]) -> bytes:
    return ("\ufeff" + _rows_text([header])).encode("utf-8")


def _rows_text(batch: Sequence[Sequence[str]]) -> str:
    """The lines of ``batch``: as columns when its rows are all as wide (an export's), else
    row by row (a report's ragged lines)."""
    if len(set(map(len, batch))) == 1 and batch[0]:
        return csv_lines(list(zip(*batch, strict=True)))
    return "".join(csv_lines([[c] for c in row]) if row else "\r\n" for row in batch)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with path.open("wb") as f:
        for chunk in csv_chunks(header, rows):
            f.write(chunk)


def write_xlsx(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    sheet: str = "Contacts",
    widths: dict[int, int] | None = None,
) -> None:
    """One sheet, every cell text, header bold and frozen; memory stays flat."""
    write_xlsx_pages(path, header, _padded_pages(rows), sheet=sheet, widths=widths)


def write_xlsx_pages(
    path: Path,
    header: Sequence[str],
    pages: Iterable[Sequence[Sequence[str]]],
    *,
    sheet: str = "Contacts",
    widths: dict[int, int] | None = None,
) -> None:
    """Like :func:`write_xlsx`, from pages of rows given as columns."""
    xlsx_sheet.write_workbook(path, header, pages, sheet=sheet, widths=widths)


def _padded_pages(rows: Iterable[Sequence[str]]) -> Iterator[list[tuple[str, ...]]]:
    """Batches of rows as columns, short rows padded with empty cells (which an XLSX
    sheet leaves out, as it leaves out a row's missing cells)."""
    source = iter(rows)
    while batch := list(islice(source, BATCH)):
        width = max(map(len, batch))
        if width:
            padded = [
                row if len(row) == width else [*row, *[""] * (width - len(row))] for row in batch
            ]
            yield list(zip(*padded, strict=True))
        else:
            yield [("",) * len(batch)]
