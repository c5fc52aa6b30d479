"""One spreadsheet row → normalized contact values and row errors, via contact.validate.

The same validation as the API runs here; only the mapping from cells to fields and from
field errors back to the file's own column headers is import-specific.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kontak.contact.normalize import (
    ADDRESS_MAX,
    CHANNEL_ALIASES,
    CHANNELS,
    HANDLE_MAX,
    NAME_MAX,
    PLATFORMS,
    TAG_MAX,
    InvalidValue,
    collapse_spaces,
    email_fast,
    normalize_handle,
    phone_fast,
)
from kontak.contact.validate import Social, validate_contact
from kontak.custom_field.values import FieldSpec, coerce
from kontak.files.cells import EMPTY_CELLS, LONGEST_EMPTY, cell_text, clean_cell
from kontak.files.headers import CUSTOM_PREFIX, ColumnMap
from kontak.messages import Text

_SIMPLE = ("name", "email", "phone", "channel", "address", "tags")
# Channels written exactly as stored or as an alias, lower-cased: what most files hold.
_PLAIN_CHANNELS: Final = {**{c: c for c in CHANNELS}, **CHANNEL_ALIASES}


def plain_phone_digits(phone: str) -> str | None:
    """The digits of an ASCII phone cell written with digits, spaces, dashes and brackets
    after at most one leading plus, or None for any other cell (or one without digits).

    Chained ``str.replace`` (a memchr each, nothing copied when the character is absent):
    the regex and ``str.translate`` it replaced were ~8,000 CPU instructions a row,
    ~7% of checking one (``tests/unit/test_plain_rows.py`` holds them equal)."""
    rest = phone[1:] if phone.startswith("+") else phone
    digits = rest.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if digits.isdigit() and digits.isascii():
        return digits
    return None


def plain_handle(part: str) -> str | None:
    """``normalize_handle``'s answer for a part of a printable ASCII cell that is a bare
    handle, maybe after ``@`` (letters, digits, ``._-``); None to ask it (a link, an
    empty part, anything else). The regex and the link tests it skips were ~4,700 CPU
    instructions a handle (``tests/unit/test_plain_rows.py`` holds the two equal)."""
    text = part.strip()
    handle = text.lstrip("@")
    if not handle or len(handle) > HANDLE_MAX or text[:4].lower() == "www.":
        return None
    rest = handle.replace(".", "").replace("_", "").replace("-", "")
    if rest and not (rest.isascii() and rest.isalnum()):
        return None
    return handle


def _clean(cell: str) -> str | None:
    """clean_cell() of a text cell, with the common case (plain text) first."""
    text = cell.strip()
    if not text:
        return None
    if text[0] == "'" or (len(text) <= LONGEST_EMPTY and text.lower() in EMPTY_CELLS):
        return clean_cell(cell)  # type: ignore[no-any-return]
    return text


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem with one cell (or the row, when ``column`` is empty)."""

    row: int
    column: str
    value: str
    message: str


@dataclass(slots=True)
class CheckedRow:
    row: int
    values: dict[str, Any]
    errors: list[RowError]


class RowChecker:
    """Checks rows of one file: its column map, the organization's region and fields."""

    def __init__(
        self,
        columns: ColumnMap,
        *,
        region: str,
        fields: Sequence[FieldSpec],
        max_cell_chars: int,
    ) -> None:
        self.columns = columns
        self.region = region
        self.fields = list(fields)
        self.max_cell_chars = max_cell_chars
        self._width = len(columns.headers)
        self._simple = [
            (i, f)
            for i, f in enumerate(columns.fields)
            if f in ("name", "email", "phone", "channel", "address", "tags")
        ]
        self._platforms = [(i, f) for i, f in enumerate(columns.fields) if f in PLATFORMS]
        self._custom = [
            (i, f.removeprefix(CUSTOM_PREFIX))
            for i, f in enumerate(columns.fields)
            if f and f.startswith(CUSTOM_PREFIX)
        ]
        self._ignored = [i for i, f in enumerate(columns.fields) if f is None]
        self._header_of = {f: columns.headers[i] for i, f in enumerate(columns.fields) if f}
        self._unnamed = [i for i in self._ignored if not columns.headers[i].strip()]
        # Each simple field's column, -1 when the file has none: native attributes of the
        # compiled checker, where a dict of them cost a look-up each (~1,200 instructions
        # a row).
        at = {f: columns.fields.index(f) for f in _SIMPLE if f in columns.fields}
        self._name_at = at.get("name", -1)
        self._email_at = at.get("email", -1)
        self._phone_at = at.get("phone", -1)
        self._channel_at = at.get("channel", -1)
        self._address_at = at.get("address", -1)
        self._tags_at = at.get("tags", -1)
        self._specs = {spec.key: spec for spec in self.fields}
        self._required = [spec.key for spec in self.fields if spec.required]

    def check(self, row: int, cells: list[Any]) -> CheckedRow:
        """The row's normalized values and every problem found in it."""
        fast = self.fast(cells)
        if fast is not None:
            return CheckedRow(row, fast[0], [])
        return self.check_any(row, cells)

    def fast(self, cells: list[Any]) -> tuple[dict[str, Any], list[Any]] | None:
        """:meth:`plain`'s values and the cells they came from, as text; for a row of
        text cells, or of text cells and a phone that a workbook holds as a number (Excel
        keeps ``6281234567890`` typed in a cell as one). None: ask :meth:`check_any`."""
        values = self.plain(cells)
        if values is not None:
            return values, cells
        texts = self.with_phone_as_text(cells)
        if texts is None:
            return None
        values = self.plain(texts)
        return None if values is None else (values, texts)

    def with_phone_as_text(self, cells: list[Any]) -> list[Any] | None:
        """``cells`` with the phone cell, a whole number below 10^15, written as
        ``cell_text`` shows it (``6281234567890``), which is also the text that
        ``normalize_phone`` reads such a number as; None when the phone cell is not
        such a number. Other cells are left as they are (a name ``123.0`` reads as
        ``123.0``, not as ``cell_text``'s ``123``: only the phone's two readings agree)."""
        col = self._phone_at
        if col < 0 or col >= len(cells):
            return None
        phone = cells[col]
        if not isinstance(phone, float) or not phone.is_integer() or not 0 <= phone < 1e15:
            return None
        texts = list(cells)
        texts[col] = cell_text(phone)
        return texts

    def plain(self, cells: list[Any]) -> dict[str, Any] | None:
        """The values of a valid row written the common way (printable ASCII text, numbers
        and emails in their usual shapes), or None to let :meth:`check_any` decide.

        A fast path for big files: whatever it returns is exactly what :meth:`check_any`
        returns, which ``tests/unit/test_fast_paths.py`` proves over the generated and
        real-world files. Anything unusual (an error included) goes the general way.
        """
        width = self._width
        if len(cells) != width:
            if len(cells) > width:
                return None
            cells = [*cells, *([""] * (width - len(cells)))]
        try:
            joined = "".join(cells)
        except TypeError:  # a number or date from a workbook
            return None
        if not (joined.isascii() and joined.isprintable()) or len(joined) > self.max_cell_chars:
            return None
        for i in self._unnamed:
            if cells[i].strip():
                return None

        col = self._name_at
        name = _clean(cells[col]) if col >= 0 else None
        if not name or len(name) > NAME_MAX:
            return None
        if "  " in name:
            name = collapse_spaces(name)

        col = self._email_at
        email = _clean(cells[col]) if col >= 0 and cells[col] else None
        email_key = None
        if email is not None:
            email = email_fast(email)
            if email is None:
                return None
            email_key = email.lower()

        col = self._phone_at
        phone = _clean(cells[col]) if col >= 0 and cells[col] else None
        if phone is not None:
            digits = plain_phone_digits(phone)
            if digits is None:
                return None
            phone = phone_fast(phone, digits, self.region)
            if phone is None:
                return None

        col = self._channel_at
        channel = _clean(cells[col]) if col >= 0 and cells[col] else None
        if channel is not None:
            channel = _PLAIN_CHANNELS.get(channel.lower())
            if channel is None:
                return None

        col = self._address_at
        address = _clean(cells[col]) if col >= 0 and cells[col] else None
        if address is not None and len(address) > ADDRESS_MAX:
            return None

        socials: list[Social] = []
        taken: set[tuple[str, str]] = set()
        for i, platform in self._platforms:
            cell = _clean(cells[i]) if cells[i] else None
            if cell is None:
                continue
            for part in cell.split(","):
                handle = plain_handle(part)
                if handle is None:
                    if not part.strip():
                        continue
                    try:
                        handle = normalize_handle(platform, part)
                    except InvalidValue:
                        return None
                    if handle is None:
                        return None
                seen = (platform, handle.lower())
                if seen not in taken:
                    taken.add(seen)
                    socials.append(Social(platform, handle))

        col = self._tags_at
        tags_cell = _clean(cells[col]) if col >= 0 and cells[col] else None
        tags: list[str] = []
        if tags_cell is not None:
            # One loop, native operations only: a list, any() over a generator and
            # dict.fromkeys() of another cost ~1,700 instructions a tagged row more.
            named: dict[str, None] = {}
            for part in tags_cell.split(","):
                tag = part.strip().lower()
                if "  " in tag or len(tag) > TAG_MAX:
                    return None
                if tag:
                    named[tag] = None
            tags = list(named)

        custom: dict[str, Any] = {}
        for i, key in self._custom:
            cell = _clean(cells[i]) if cells[i] else None
            if cell is not None:
                try:
                    custom[key] = coerce(self._specs[key], cell)
                except InvalidValue:
                    return None
        for key in self._required:
            if custom.get(key) is None:
                return None

        if not (phone or email or socials):
            return None
        # Built whole at the end: filled key by key, the dict grew twice (~2,400
        # instructions a row).
        return {
            "name": name,
            "email": email,
            "email_key": email_key,
            "phone": phone,
            "channel": channel,
            "address": address,
            "social_accounts": socials,
            "tags": tags,
            "custom_fields": custom,
        }

    def check_any(self, row: int, cells: list[Any]) -> CheckedRow:
        """The general check: any cell, any problem, each reported at its column."""
        errors: list[RowError] = []
        if len(cells) < self._width:
            cells = [*cells, *([""] * (self._width - len(cells)))]
        extra = [c for c in cells[self._width :] if clean_cell(c) is not None]
        if extra:
            errors.append(
                RowError(
                    row,
                    "",
                    cell_text(extra[0]),
                    Text("row.too_long", cells=len(cells), columns=self._width),
                )
            )
        for i, cell in enumerate(cells[: self._width]):
            if isinstance(cell, str) and len(cell) > self.max_cell_chars:
                errors.append(
                    RowError(
                        row,
                        self.columns.headers[i],
                        cell[:50] + "…",
                        Text(
                            "cell.too_long", length=f"{len(cell):,}", max=f"{self.max_cell_chars:,}"
                        ),
                    )
                )
                cells[i] = ""
            elif isinstance(cell, str) and "\ufffd" in cell:
                errors.append(
                    RowError(
                        row,
                        self.columns.headers[i],
                        cell,
                        Text("cell.bad_bytes"),
                    )
                )
        for i in self._ignored:
            if not self.columns.headers[i].strip() and clean_cell(cells[i]) is not None:
                errors.append(
                    RowError(
                        row,
                        "",
                        cell_text(cells[i]),
                        Text("cell.no_header", column=i + 1),
                    )
                )

        raw: dict[str, Any] = {f: clean_cell(cells[i]) for i, f in self._simple}
        socials: list[dict[str, Any]] = []
        social_columns: list[str] = []
        for i, platform in self._platforms:
            value = clean_cell(cells[i])
            if value is None:
                continue
            for handle in cell_text(value).split(","):
                if handle.strip():
                    socials.append({"platform": platform, "handle": handle.strip()})
                    social_columns.append(self.columns.headers[i])
        raw["social_accounts"] = socials
        raw["custom_fields"] = {
            key: clean_cell(cells[i]) for i, key in self._custom if clean_cell(cells[i]) is not None
        }
        values, field_errors = validate_contact(raw, region=self.region, fields=self.fields)
        for fe in field_errors:
            column, value = self._locate(fe.field, cells, social_columns)
            errors.append(RowError(row, column, value, fe.message))
        if not field_errors and not (
            values.get("phone") or values.get("email") or values.get("social_accounts")
        ):
            errors.append(
                RowError(
                    row,
                    self._header_of.get("phone") or self._header_of.get("email") or "",
                    "",
                    Text("row.unreachable"),
                )
            )
        return CheckedRow(row, values, errors)

    def _locate(self, field: str, cells: list[Any], social_columns: list[str]) -> tuple[str, str]:
        """The file's header and raw cell behind a validation field path."""
        if field.startswith("social_accounts."):
            parts = field.split(".")
            index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            header = social_columns[index] if index < len(social_columns) else ""
        elif field.startswith("custom_fields."):
            header = self._header_of.get(CUSTOM_PREFIX + field.split(".", 1)[1], "")
        else:
            header = self._header_of.get(field, "")
        if not header:
            return field, ""
        position = self.columns.headers.index(header)
        return header, cell_text(cells[position])
