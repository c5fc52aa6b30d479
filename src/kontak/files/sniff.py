"""Decide what an uploaded file is from its first bytes, never from its name or media type."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

from kontak.files.errors import FileRejected

Format = Literal["csv", "xlsx"]

_ZIP = b"PK\x03\x04"
_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
_ENCRYPTED_MARKER = "EncryptedPackage".encode("utf-16-le")
_BINARY_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"{\\rtf": "an RTF document",
}
SAVE_AS = "Save it from your spreadsheet program as .xlsx or as CSV, and upload that file."


def sniff(path: Path) -> Format:
    """``csv`` or ``xlsx``; anything else raises FileRejected saying what it is."""
    with path.open("rb") as f:
        head = f.read(8192)
    if not head:
        raise FileRejected(
            "The file is empty. Fill in the template and upload it again.", code="empty"
        )
    if head.startswith(_ZIP):
        return _zip_kind(path)
    if head.startswith(_OLE2):
        with path.open("rb") as f:
            blob = f.read(1 << 20)
        if _ENCRYPTED_MARKER in blob:
            raise FileRejected(
                "The workbook is password-protected. Remove the password (File → Info → "
                "Protect Workbook), save it, and upload it again.",
                code="encrypted",
            )
        raise FileRejected(
            f"This is an old Excel 97-2003 (.xls) workbook. {SAVE_AS}", code="legacy_xls"
        )
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise FileRejected(
                f"The file is {what}, not a CSV or XLSX file. {SAVE_AS}", code="unsupported"
            )
    if _looks_binary(head):
        raise FileRejected(f"The file is not a CSV or XLSX file. {SAVE_AS}", code="unsupported")
    return "csv"


def _zip_kind(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise FileRejected(
            f"The file is a damaged ZIP or Excel file. {SAVE_AS}", code="corrupt"
        ) from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "content.xml" in names and "mimetype" in names:
        raise FileRejected(
            f"This is an OpenDocument spreadsheet (.ods). {SAVE_AS}", code="unsupported"
        )
    if "word/document.xml" in names:
        raise FileRejected(
            f"This is a Word document, not a spreadsheet. {SAVE_AS}", code="unsupported"
        )
    raise FileRejected(
        f"The file is a ZIP archive, not an Excel workbook. {SAVE_AS}", code="unsupported"
    )


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text: NULs are expected
    if b"\x00" in head:
        # UTF-16 without a BOM has NULs in every other byte; other NULs mean binary.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        return not (max(even, odd) > len(head) // 4 and min(even, odd) == 0)
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 20
