"""Decide what an uploaded file is from its first bytes, never from its name or media type."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

from kontak.files.errors import FileRejected
from kontak.messages import Text

Format = Literal["csv", "xlsx"]

_ZIP = b"PK\x03\x04"
_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
_ENCRYPTED_MARKER = "EncryptedPackage".encode("utf-16-le")
_BINARY_MAGIC = {
    b"%PDF": "kind.pdf",
    b"\x89PNG": "kind.png",
    b"\xff\xd8\xff": "kind.jpeg",
    b"GIF8": "kind.gif",
    b"\x1f\x8b": "kind.gzip",
    b"Rar!": "kind.rar",
    b"7z\xbc\xaf": "kind.7z",
    b"{\\rtf": "kind.rtf",
}
SAVE_AS = Text("file.save_as")


def sniff(path: Path) -> Format:
    """``csv`` or ``xlsx``; anything else raises FileRejected saying what it is."""
    with path.open("rb") as f:
        head = f.read(8192)
    if not head:
        raise FileRejected("file.empty")
    if head.startswith(_ZIP):
        return _zip_kind(path)
    if head.startswith(_OLE2):
        with path.open("rb") as f:
            blob = f.read(1 << 20)
        if _ENCRYPTED_MARKER in blob:
            raise FileRejected("file.encrypted")
        raise FileRejected("file.legacy_xls", save_as=SAVE_AS)
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise FileRejected("file.kind", what=Text(what), save_as=SAVE_AS)
    if _looks_binary(head):
        raise FileRejected("file.binary", save_as=SAVE_AS)
    return "csv"


def _zip_kind(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise FileRejected("file.damaged_zip", save_as=SAVE_AS) from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "content.xml" in names and "mimetype" in names:
        raise FileRejected("file.ods", save_as=SAVE_AS)
    if "word/document.xml" in names:
        raise FileRejected("file.word", save_as=SAVE_AS)
    raise FileRejected("file.zip", save_as=SAVE_AS)


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text: NULs are expected
    if b"\x00" in head:
        # UTF-16 without a BOM has NULs in every other byte; other NULs mean binary.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        return not (max(even, odd) > len(head) // 4 and min(even, odd) == 0)
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 20
