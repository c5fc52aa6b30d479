"""Header names: how a spreadsheet column maps to a contact field, in English and Indonesian."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kontak.contact.normalize import PLATFORMS
from kontak.files.errors import FileRejected

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
        names = ", ".join(_with_hint(h, known, custom) for h in unknown)
        raise FileRejected(
            f"The file has columns Kontak does not know: {names}. Rename or remove them; the "
            f"columns are: {', '.join(known)}.",
            code="unknown_columns",
        )
    if doubled:
        raise FileRejected(
            f"Columns {'; '.join(doubled)} are the same field. Keep one of each.",
            code="duplicate_columns",
        )
    if "name" not in seen:
        raise FileRejected(
            "The file has no 'name' column (or 'nama'). Add it as in the template.",
            code="missing_name",
        )
    if not CONTACT_POINTS & set(seen):
        raise FileRejected(
            "The file has no column to reach a contact: add 'phone', 'email' or a social "
            "account column (" + ", ".join(PLATFORMS) + ").",
            code="missing_contact_point",
        )
    return ColumnMap(headers=list(headers), fields=fields)


def _with_hint(header: str, known: list[str], custom: dict[str, str]) -> str:
    key = header_key(header)
    candidates = {**BUILTIN_HEADERS}
    candidates.update({k: v.removeprefix(CUSTOM_PREFIX) for k, v in custom.items()})
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.75)
    if match:
        return f"'{header}' (did you mean '{candidates[match[0]]}'?)"
    return f"'{header}'"
