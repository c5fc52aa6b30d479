"""Header names: how a spreadsheet column maps to a contact field, in English and Indonesian."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kontak.contact.normalize import PLATFORMS
from kontak.files.errors import FileRejected
from kontak.messages import Join, Text

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
    "name": (
        "nama",
        "namalengkap",
        "fullname",
        "contactname",
        "namakontak",
        "namapelanggan",
        "displayname",
    ),
    "email": ("emailaddress", "alamatemail", "surel", "mail", "primaryemail", "e-mail"),
    "phone": (
        "phonenumber",
        "mobilenumber",
        "whatsappnumber",
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

# The first column of a downloaded report says what was wrong; a fixed report re-imports.
REPORT_COLUMNS = frozenset({"problem", "kesalahan"})
CONTACT_POINTS = frozenset({"email", "phone", *PLATFORMS})
CUSTOM_PREFIX = "cf:"


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """The file's own headers and, per column, the field it feeds (None: ignored)."""

    headers: list[str]
    fields: list[str | None]

    def index(self, field: str) -> int | None:
        try:
            return self.fields.index(field)
        except ValueError:
            return None


def map_headers(headers: Sequence[str], custom_keys: Sequence[str] = ()) -> ColumnMap:
    """Map each header to a field, or reject the file naming the columns at fault."""
    custom = {header_key(k): CUSTOM_PREFIX + k for k in custom_keys}
    fields: list[str | None] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    doubled: list[str] = []
    for position, header in enumerate(headers):
        key = header_key(header)
        if not key or (position == 0 and key in REPORT_COLUMNS):
            fields.append(None)
            continue
        field = BUILTIN_HEADERS.get(key) or custom.get(key)
        if field is None:
            unknown.append(header)
            fields.append(None)
            continue
        if field in seen:
            doubled.append(f"'{seen[field]}' and '{header}'")
        seen[field] = header
        fields.append(field)
    known = [*TEMPLATE_COLUMNS, *custom_keys]
    if unknown:
        names = Join(tuple(_with_hint(h, custom) for h in unknown))
        raise FileRejected("header.unknown", names=names, known=", ".join(known))
    if doubled:
        raise FileRejected("header.doubled", columns="; ".join(doubled))
    if "name" not in seen:
        raise FileRejected("header.no_name")
    if not CONTACT_POINTS & set(seen):
        raise FileRejected("header.no_contact_point", platforms=", ".join(PLATFORMS))
    return ColumnMap(headers=list(headers), fields=fields)


def _with_hint(header: str, custom: dict[str, str]) -> Text:
    candidates = {**BUILTIN_HEADERS}
    candidates.update({k: v.removeprefix(CUSTOM_PREFIX) for k, v in custom.items()})
    match = difflib.get_close_matches(header_key(header), list(candidates), n=1, cutoff=0.75)
    if match:
        return Text("header.unknown_hint", header=header, suggestion=candidates[match[0]])
    return Text("header.unknown_one", header=header)
