"""Header names: how a spreadsheet column maps to a contact field, in English and Indonesian."""

from __future__ import annotations

import re

from kontak.contact.normalize import PLATFORMS

TEMPLATE_COLUMNS = (
    "name",
    "email",
    "phone",
    "channel",
    "address",
    "tags",
    *PLATFORMS,
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("nama", "namalengkap", "fullname", "contactname", "namakontak", "namapelanggan"),
    "email": ("emailaddress", "alamatemail", "surel", "mail", "surat elektronik"),
    "phone": (
        "phonenumber",
        "nohp",
        "nomorhp",
        "nomortelepon",
        "notelepon",
        "telepon",
        "telp",
        "notelp",
        "nomortelp",
        "hp",
        "handphone",
        "mobile",
        "mobilephone",
        "nowa",
        "nomorwa",
        "nomorwhatsapp",
        "ponsel",
        "nomorponsel",
    ),
    "channel": ("kanal", "saluran"),
    "address": ("alamat", "alamatlengkap"),
    "tags": ("tag", "label", "labels"),
    "twitter": ("x",),
}

_IGNORED = re.compile(r"[\s_\-.]+")


def header_key(header: str) -> str:
    """The form headers are compared in: case-folded, without spaces, ``_``, ``-`` or ``.``."""
    return _IGNORED.sub("", header.replace("\ufeff", "")).casefold()


BUILTIN_HEADERS: dict[str, str] = {header_key(c): c for c in TEMPLATE_COLUMNS}
for _column, _names in _ALIASES.items():
    BUILTIN_HEADERS.update({header_key(n): _column for n in _names})
