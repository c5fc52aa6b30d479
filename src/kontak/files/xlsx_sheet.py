"""A big XLSX sheet: XlsxWriter writes the workbook, its rows are made here.

XlsxWriter's per-cell Python costs ~7.7 µs a cell: 62 s of the 72 s that a million
contacts took to export. So XlsxWriter still writes the whole workbook (styles, the
header row, column widths and formats, the frozen pane) but with the header alone, and
the data rows are made here a page of columns at a time, like the CSV (a column holding
nothing to escape is not looked at character by character), in the very markup that
XlsxWriter's constant-memory mode writes: the same bytes, which
``tests/unit/test_xlsx_sheet.py`` checks against XlsxWriter itself. They go to a temporary
file, and are put into XlsxWriter's sheet (and its ``dimension`` set) when the workbook's
entries are copied into the final file.

One difference on purpose: XlsxWriter writes a text that starts with ``<r>`` and ends with
``</r>`` as raw rich-text markup, unescaped; here every text is escaped. (A contact named
``<r>A & B</r>`` made XlsxWriter's export unreadable.)
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import xlsxwriter

MAX_ROW = 1_048_575  # an XLSX sheet's last row and column (zero-based)
MAX_COL = 16_383
_STRMAX = 32_767  # Excel's longest text, in UTF-16 units; XlsxWriter cuts longer ones
_SHEET = "xl/worksheets/sheet1.xml"
_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
# What XlsxWriter escapes: control characters as _xHHHH_ (and an _xHHHH_ already in the
# text by escaping its underscore), two non-characters, and & < > as entities.
_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]").search
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_LOOKS_ESCAPED = re.compile("(_x[0-9a-fA-F]{4}_)")
# Joins a column's cells for the column-wide checks: neither escaped nor white space, and in
# a cell it can only make a check say "look closer" where it did not need to.
_SEP = "\x7f"


class SheetFull(ValueError):
    """More rows or columns than an XLSX sheet holds (1,048,576 rows, 16,384 columns).
    XlsxWriter left such cells out without a word."""


def write_workbook(
    path: Path,
    header: Sequence[str],
    pages: Iterable[Sequence[Sequence[str]]],
    *,
    sheet: str,
    widths: dict[int, int] | None,
) -> None:
    """One sheet: ``header`` bold and frozen, then the rows that ``pages`` hold (each a
    list of equally long columns), every cell text."""
    if not header:
        raise ValueError("an XLSX sheet needs a header")
    if len(header) - 1 > MAX_COL:
        raise SheetFull("more columns than an XLSX sheet holds")
    with tempfile.TemporaryDirectory(prefix=".kontak-xlsx-", dir=path.parent) as tmp:
        skeleton = Path(tmp) / "skeleton.xlsx"
        style = _skeleton(skeleton, header, sheet, widths)
        body = Path(tmp) / "rows.xml"
        last_row, last_col = 0, len(header) - 1
        with body.open("w", encoding="utf-8", newline="") as f:
            first = 1
            for columns in pages:
                count = len(columns[0]) if columns else 0
                if not count:
                    continue
                if first + count - 1 > MAX_ROW or len(columns) - 1 > MAX_COL:
                    raise SheetFull("more rows or columns than an XLSX sheet holds")
                xml, page_last_row, page_last_col = sheet_rows(columns, first, style)
                f.write(xml)
                if page_last_row:
                    last_row = page_last_row
                last_col = max(last_col, page_last_col)
                first += count
        _assemble(skeleton, body, path, _reference(last_row, last_col))


def sheet_rows(columns: Sequence[Sequence[str]], first: int, style: int) -> tuple[str, int, int]:
    """The ``<row>`` elements of these columns' rows, the first being sheet row ``first``
    (zero-based), each non-empty cell text of format ``style``; with the last row and
    column that hold a cell (0 when none)."""
    numbers = list(map(str, range(first + 1, first + 1 + len(columns[0]))))
    cells = [_column(c, _column_name(i), numbers, style) for i, c in enumerate(columns)]
    last_col = max((i for i, c in enumerate(columns) if any(c)), default=0)
    rows = []
    last_row = 0
    for index, (number, parts) in enumerate(zip(numbers, zip(*cells, strict=True), strict=True)):
        inner = "".join(parts)
        if inner:
            rows.append(f'<row r="{number}">{inner}</row>')
            last_row = first + index
    return "".join(rows), last_row, last_col


def _column(cells: Sequence[str], name: str, numbers: list[str], style: int) -> list[str]:
    joined = _SEP.join(cells)
    longest = max(map(len, cells), default=0)
    escaped = bool(_NEEDS_ESCAPE(joined)) or "_x" in joined or longest > _STRMAX // 2
    if escaped:
        cells = [_escape(c) if c else c for c in cells]
    head = '<c r="' + name
    plain = f'" s="{style}" t="inlineStr"><is><t>'
    if not escaped and not _may_have_edge_space(joined):
        return [
            head + number + plain + c + "</t></is></c>" if c else ""
            for number, c in zip(numbers, cells, strict=True)
        ]
    spaced = f'" s="{style}" t="inlineStr"><is><t xml:space="preserve">'
    return [
        (
            head
            + number
            + (spaced if c[0].isspace() or c[-1].isspace() else plain)
            + c
            + "</t></is></c>"
        )
        if c
        else ""
        for number, c in zip(numbers, cells, strict=True)
    ]


def _may_have_edge_space(joined: str) -> bool:
    """Whether a cell of the column (joined by ``_SEP``, nothing to escape in it) may begin
    or end with white space. Past escaping, an ASCII text's white space is a space, a tab
    or a line feed; any other text is looked at cell by cell."""
    if not joined.isascii():
        return True
    return (
        "\t" in joined
        or "\n" in joined
        or joined.startswith(" ")
        or joined.endswith(" ")
        or _SEP + " " in joined
        or " " + _SEP in joined
    )


def _escape(text: str) -> str:
    """A cell's text as XlsxWriter escapes it, in its order (the leading and trailing white
    space that asks for ``xml:space`` is looked at afterwards)."""
    if len(text) > _STRMAX // 2 and len(text.encode("utf-16-le", "surrogatepass")) > 2 * _STRMAX:
        text = _utf16_prefix(text, _STRMAX)
    text = _LOOKS_ESCAPED.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utf16_prefix(text: str, units: int) -> str:
    """The longest start of ``text`` of at most ``units`` UTF-16 units."""
    length = 0
    for index, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > units:
            return text[:index]
    return text


def _column_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _reference(last_row: int, last_col: int) -> str:
    """The sheet's ``dimension``, as XlsxWriter writes it: from A1 to the last cell."""
    end = f"{_column_name(last_col)}{last_row + 1}"
    return "A1" if end == "A1" else f"A1:{end}"


def _skeleton(path: Path, header: Sequence[str], sheet: str, widths: dict[int, int] | None) -> int:
    """The workbook with its header row alone; returns the index of the cells' format."""
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
    finally:
        workbook.close()
    return int(text.xf_index)


def _assemble(skeleton: Path, body: Path, path: Path, reference: str) -> None:
    """The final file: the skeleton's entries, its sheet with the rows put in."""
    with zipfile.ZipFile(skeleton) as source:
        sheet = source.read(_SHEET).decode("utf-8")
        start, end = sheet.split("</sheetData>", 1)
        start = _DIMENSION.sub(f'<dimension ref="{reference}"/>', start, count=1)
        head, tail = start.encode("utf-8"), ("</sheetData>" + end).encode("utf-8")
        size = len(head) + body.stat().st_size + len(tail)
        # Level 1: the sheet is hundreds of MB of markup. A million contacts' export took
        # 11.1 s (56 MB) so, 15.9 s (46 MB) at XlsxWriter's level 6.
        with zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        ) as target:
            for info in source.infolist():
                if info.filename != _SHEET:
                    target.writestr(info, source.read(info))
                    continue
                with (
                    target.open(_SHEET, "w", force_zip64=size > 2**31 - 1) as out,
                    body.open("rb") as rows,
                ):
                    out.write(head)
                    shutil.copyfileobj(rows, out, 1 << 20)
                    out.write(tail)
