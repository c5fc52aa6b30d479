"""Builders of test files: CSV bytes in any encoding and XLSX workbooks, made in the test."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

from kontak.files.headers import TEMPLATE_COLUMNS

TEMPLATE = list(TEMPLATE_COLUMNS)


def csv_bytes(
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\r\n",
) -> bytes:
    """Rows joined by hand (quotes doubled where needed), encoded as asked."""

    def cell(value: str) -> str:
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = newline.join(delimiter.join(cell(c) for c in row) for row in rows) + newline
    return text.encode(encoding)


def xlsx_bytes(
    rows: Sequence[Sequence[Any]],
    *,
    sheet: str = "Contacts",
    before: Sequence[tuple[str, bool]] = (),
) -> bytes:
    """A workbook whose sheet ``sheet`` holds ``rows``; ``before`` adds (name, hidden) sheets first."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    for name, hidden in before:
        extra = workbook.add_worksheet(name)
        extra.write_string(0, 0, "not contacts")
        if hidden:
            extra.hide()
    ws = workbook.add_worksheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                ws.write_string(r, c, value)
            else:
                ws.write(r, c, value)
    if before:
        ws.activate()
    workbook.close()
    return buffer.getvalue()


def strip_dimension(data: bytes) -> bytes:
    """The same workbook without <dimension> elements (so only parsing finds the extent)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                content = re.sub(rb"<dimension[^>]*/>", b"", content)
            target.writestr(info.filename, content)
    return out.getvalue()


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def far_corner_xlsx() -> bytes:
    """1.5 KB of workbook with cells at A1 and XFD1048576 (the calamine abort case)."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = workbook.add_worksheet()
    ws.write_string(0, 0, "name")
    ws.write_string(0, 1, "phone")
    ws.write_string(1048575, 16383, "x")
    workbook.close()
    return buffer.getvalue()
