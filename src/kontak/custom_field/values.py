"""Typed values of custom fields: one coercion per field type, shared by API, form and import."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kontak.contact.normalize import InvalidValue, clean_text

FIELD_TYPES = ("text", "number", "date", "boolean", "select")
TEXT_MAX = 2000

_TRUE = {"true", "yes", "y", "1", "ya", "benar", "iya"}
_FALSE = {"false", "no", "n", "0", "tidak", "salah", "tdk"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4})$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What validation needs to know of a custom field (no database object)."""

    key: str
    label: str
    type: str
    required: bool = False
    options: tuple[str, ...] = field(default_factory=tuple)


def coerce(spec: FieldSpec, value: Any) -> Any:
    """The stored JSON value of ``value`` for ``spec``, or None when it is empty."""
    if value is None or (isinstance(value, str) and not clean_text(value)):
        return None
    coercer = _COERCERS[spec.type]
    return coercer(spec, value)


def _text(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, bool | int | float | dict | list):
        if isinstance(value, dict | list):
            raise InvalidValue("custom.text", label=spec.label)
        value = str(value)
    text = clean_text(value)
    if len(text) > TEXT_MAX:
        raise InvalidValue("custom.too_long", label=spec.label, length=len(text), max=TEXT_MAX)
    return text


def _number(spec: FieldSpec, value: Any) -> int | float:
    if isinstance(value, bool):
        raise InvalidValue("custom.number", label=spec.label)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue("custom.finite", label=spec.label)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    text = clean_text(value).replace(" ", "")
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")  # Indonesian decimal comma: 12,5
    if not _NUMBER.match(text):
        raise InvalidValue("custom.not_number", value=text, label=spec.label)
    return float(text) if "." in text else int(text)


def _date(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = clean_text(value)
    try:
        if match := _DAY_FIRST.match(text):
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day).isoformat()
        return date.fromisoformat(
            text[:10] if len(text) > 10 and text[10] in "T " else text
        ).isoformat()
    except ValueError:
        raise InvalidValue("custom.date", value=text, label=spec.label) from None


def _boolean(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = clean_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidValue("custom.boolean", value=text, label=spec.label)


def _select(spec: FieldSpec, value: Any) -> str:
    text = clean_text(value if isinstance(value, str) else str(value))
    for option in spec.options:
        if option.lower() == text.lower():
            return option
    raise InvalidValue(
        "custom.select", value=text, label=spec.label, choices=", ".join(spec.options)
    )


_COERCERS = {
    "text": _text,
    "number": _number,
    "date": _date,
    "boolean": _boolean,
    "select": _select,
}
