"""Writing rows to CSV (streamed) and XLSX (XlsxWriter, constant memory), safely.

CSV cells that a spreadsheet would run as a formula (``= + - @``, tab, CR) get a leading
``'``; the importer strips one leading ``'``. XLSX cells are always written as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import xlsxwriter

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """UTF-8 (with BOM, so Excel reads it as UTF-8) CSV, yielded in chunks of many rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([escape_formula(h) for h in header])
    starts = frozenset(_FORMULA_START)
    for count, row in enumerate(rows, 1):
        # escape_formula() inlined: a million-row export calls it 13 million times.
        writer.writerow([("'" + c) if c[:1] in starts else c for c in row])
        if count % 2000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


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
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    try:
        ws = workbook.add_worksheet(sheet)
        text = workbook.add_format({"num_format": "@"})
        bold = workbook.add_format({"bold": True, "num_format": "@"})
        for col in range(len(header)):
            ws.set_column(col, col, (widths or {}).get(col, 18), text)
        ws.freeze_panes(1, 0)
        for col, name in enumerate(header):
            ws.write_string(0, col, name, bold)
        for r, row in enumerate(rows, 1):
            for col, value in enumerate(row):
                if value:
                    ws.write_string(r, col, value, text)
    finally:
        workbook.close()
