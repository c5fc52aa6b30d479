"""XLSX reader: checks the ZIP and the sheet's extent first, then reads with python-calamine.

calamine holds the whole sheet in memory and aborts the process on some hostile workbooks,
so this runs only inside the import's parsing child process (``import_job.stage``), whose
memory is capped.
"""

from __future__ import annotations

import functools
import itertools
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
        raise FileRejected("file.encrypted") from None
    except calamine.CalamineError as exc:
        raise FileRejected("file.unreadable_workbook", reason=str(exc), save_as=SAVE_AS) from None
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
                "file.unreadable_sheet", sheet=name, reason=str(exc), save_as=SAVE_AS
            ) from None
        if sheet.height == 0:
            continue
        if sheet.width > limits.max_columns:
            raise FileRejected(
                "file.sheet_too_wide",
                sheet=name,
                count=f"{sheet.width:,}",
                max=f"{limits.max_columns:,}",
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
            reread=functools.partial(_reread, sheet, header_row, limits),
        )
    raise FileRejected("file.no_sheet")


def check_archive(path: Path, limits: Limits) -> None:
    """Refuse ZIP bombs and sheets whose declared extent is past the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > limits.max_xlsx_uncompressed_bytes:
                raise FileRejected("file.unpacks_too_large", size=f"{total / 1e9:.1f}")
            for info in infos:
                if info.file_size > 10_000_000 and info.file_size > _MAX_RATIO * max(
                    info.compress_size, 1
                ):
                    raise FileRejected("file.zip_bomb", save_as=SAVE_AS)
            for sheet_path in _sheet_paths(archive):
                _check_dimension(archive, sheet_path, limits)
    except zipfile.BadZipFile:
        raise FileRejected("file.damaged_workbook", save_as=SAVE_AS) from None


def _sheet_paths(archive: zipfile.ZipFile) -> list[str]:
    try:
        workbook = ElementTree.fromstring(_read_small(archive, "xl/workbook.xml"))
        rels = ElementTree.fromstring(_read_small(archive, "xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        raise FileRejected("file.damaged_structure", save_as=SAVE_AS) from None
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
        raise FileRejected("file.damaged_structure", save_as=SAVE_AS)
    data = archive.read(name)
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise FileRejected("file.xml", save_as=SAVE_AS)
    return data


def _check_dimension(archive: zipfile.ZipFile, name: str, limits: Limits) -> None:
    try:
        with archive.open(name) as stream:
            head = stream.read(65536)
    except KeyError:
        return
    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
        raise FileRejected("file.xml", save_as=SAVE_AS)
    match = _DIMENSION.search(head)
    if not match or not match.group(3):
        return
    last_col, last_row = _column_number(match.group(3).decode()), int(match.group(4))
    if last_col > limits.max_columns:
        raise FileRejected(
            "file.extent_columns",
            column=match.group(3).decode(),
            count=f"{last_col:,}",
            max=f"{limits.max_columns:,}",
        )
    if last_row > limits.max_rows + 1:
        raise FileRejected("file.extent_rows", row=f"{last_row:,}", max=f"{limits.max_rows:,}")


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


def _reread(sheet: Any, header_row: int, limits: Limits) -> Iterator[tuple[int, list[Any]]]:
    """The sheet's data rows again, from the cells calamine holds."""
    rows = sheet.iter_rows()
    for _ in itertools.islice(rows, header_row):
        pass
    return _rows(rows, header_row, limits)


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
            raise FileRejected("file.too_many_rows", max=f"{limits.max_rows:,}")
        yield number, cells
