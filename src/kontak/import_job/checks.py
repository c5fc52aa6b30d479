"""One spreadsheet row → normalized contact values and row errors, via contact.validate.

The same validation as the API runs here; only the mapping from cells to fields and from
field errors back to the file's own column headers is import-specific.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kontak.contact.normalize import PLATFORMS
from kontak.contact.validate import validate_contact
from kontak.custom_field.values import FieldSpec
from kontak.files.cells import cell_text, clean_cell
from kontak.files.headers import CUSTOM_PREFIX, ColumnMap
from kontak.messages import Text

_SIMPLE = ("name", "email", "phone", "channel", "address", "tags")


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

    def check(self, row: int, cells: list[Any]) -> CheckedRow:
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
