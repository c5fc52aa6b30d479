"""XLSX reader: checks the ZIP and the sheet's extent first, then reads with python-calamine.

calamine holds the whole sheet in memory and aborts the process on some hostile workbooks,
so this runs only inside the import's parsing child process (``import_job.stage``), whose
memory is capped.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import python_calamine as calamine

from kontak.files.cells import cell_text
from kontak.files.errors import FileRejected
from kontak.files.sniff import SAVE_AS
from kontak.files.table import Limits, Table, is_blank

_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MAX_RATIO = 250


def read_xlsx(path: Path, limits: Limits) -> Table:
    """The first visible worksheet with data; its first non-blank row is the header."""
    check_archive(path, limits)
    try:
        workbook = calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError:
        raise FileRejected(
            "The workbook is password-protected. Remove the password, save, and upload again.",
            code="encrypted",
        ) from None
    except calamine.CalamineError as exc:
        raise FileRejected(
            f"The workbook could not be read ({exc}). {SAVE_AS}", code="corrupt"
        ) from None
    visible = [
        m.name
        for m in workbook.sheets_metadata
        if m.visible == calamine.SheetVisibleEnum.Visible
        and m.typ == calamine.SheetTypeEnum.WorkSheet
    ]
    for name in visible:
        try:
            sheet = workbook.get_sheet_by_name(name)
        except calamine.CalamineError as exc:
            raise FileRejected(
                f"Sheet '{name}' could not be read ({exc}). {SAVE_AS}", code="corrupt"
            ) from None
        if sheet.height == 0:
            continue
        if sheet.width > limits.max_columns:
            raise FileRejected(
                f"Sheet '{name}' has {sheet.width:,} columns; the most is {limits.max_columns:,}.",
                code="too_many_columns",
            )
        rows = sheet.iter_rows()
        header, header_row = _header(rows)
        if header is None:
            continue
        return Table(
            headers=header,
            header_row=header_row,
            rows=_rows(rows, header_row, limits),
            estimated_rows=max(0, sheet.height - header_row),
        )
    raise FileRejected(
        "The file has no contacts: the workbook has no sheet with data. Fill in the template "
        "and upload it again.",
        code="no_rows",
    )


def check_archive(path: Path, limits: Limits) -> None:
    """Refuse ZIP bombs and sheets whose declared extent is past the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > limits.max_xlsx_uncompressed_bytes:
                raise FileRejected(
                    f"The workbook unpacks to {total / 1e9:.1f} GB, more than this service "
                    "accepts. Split it into smaller files.",
                    code="too_large",
                )
            for info in infos:
                if info.file_size > 10_000_000 and info.file_size > _MAX_RATIO * max(
                    info.compress_size, 1
                ):
                    raise FileRejected(
                        "The workbook is compressed suspiciously well (a 'ZIP bomb'); it was not "
                        f"opened. {SAVE_AS}",
                        code="zip_bomb",
                    )
            for sheet_path in _sheet_paths(archive):
                _check_dimension(archive, sheet_path, limits)
    except zipfile.BadZipFile:
        raise FileRejected(f"The workbook is damaged. {SAVE_AS}", code="corrupt") from None


def _sheet_paths(archive: zipfile.ZipFile) -> list[str]:
    try:
        workbook = ElementTree.fromstring(_read_small(archive, "xl/workbook.xml"))
        rels = ElementTree.fromstring(_read_small(archive, "xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        raise FileRejected(
            f"The workbook's structure is damaged. {SAVE_AS}", code="corrupt"
        ) from None
    targets = {r.get("Id"): r.get("Target", "") for r in rels}
    paths = []
    for sheet in workbook.iter():
        if sheet.tag.endswith("}sheet"):
            target = targets.get(sheet.get(_NS_REL), "")
            target = target.lstrip("/")
            paths.append(target if target.startswith("xl/") else f"xl/{target}")
    return paths


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > 20_000_000:
        raise FileRejected(f"The workbook's structure is damaged. {SAVE_AS}", code="corrupt")
    data = archive.read(name)
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise FileRejected(f"The workbook contains XML it may not contain. {SAVE_AS}", code="xml")
    return data


def _check_dimension(archive: zipfile.ZipFile, name: str, limits: Limits) -> None:
    try:
        with archive.open(name) as stream:
            head = stream.read(65536)
    except KeyError:
        return
    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
        raise FileRejected(f"The workbook contains XML it may not contain. {SAVE_AS}", code="xml")
    match = _DIMENSION.search(head)
    if not match or not match.group(3):
        return
    last_col, last_row = _column_number(match.group(3).decode()), int(match.group(4))
    if last_col > limits.max_columns:
        raise FileRejected(
            f"A sheet reaches column {match.group(3).decode()} ({last_col:,} columns); the most "
            f"is {limits.max_columns:,}. Delete the empty columns at the right, save, and "
            "upload again.",
            code="too_many_columns",
        )
    if last_row > limits.max_rows + 1:
        raise FileRejected(
            f"A sheet reaches row {last_row:,}; the most is {limits.max_rows:,} contacts. "
            "Delete the empty rows at the bottom or split the file.",
            code="too_many_rows",
        )


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + (ord(letter) - 64)
    return number


def _header(rows: Iterator[list[Any]]) -> tuple[list[str] | None, int]:
    number = 0
    for cells in rows:
        number += 1
        if is_blank(cells):
            continue
        return [cell_text(c).replace("\ufeff", "").strip() for c in cells], number
    return None, number


def _rows(
    rows: Iterator[list[Any]], header_row: int, limits: Limits
) -> Iterator[tuple[int, list[Any]]]:
    number = header_row
    data_rows = 0
    for cells in rows:
        number += 1
        if is_blank(cells):
            continue
        data_rows += 1
        if data_rows > limits.max_rows:
            raise FileRejected(
                f"The file has more than {limits.max_rows:,} contacts; split it into "
                "smaller files.",
                code="too_many_rows",
            )
        yield number, cells
