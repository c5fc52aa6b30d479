"""Cleaning one spreadsheet cell: what counts as empty, and undoing our export's escaping."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Final

EMPTY_MARKERS = frozenset({"null", "n/a", "na", "-", "none", "#n/a", "nil"})
# Excel error values that calamine hands back as text; they carry no data.
ERROR_VALUES = frozenset(
    {"#n/a", "#ref!", "#value!", "#div/0!", "#name?", "#null!", "#num!", "#getting_data"}
)


EMPTY_CELLS: Final = EMPTY_MARKERS | ERROR_VALUES  # what an empty cell may say instead
LONGEST_EMPTY: Final = max(len(m) for m in EMPTY_CELLS)


def cell_text(value: Any) -> str:
    """The cell as the text a person sees; numbers that are whole lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def clean_cell(value: Any) -> Any:
    """The value to validate: None for empty cells; one leading ``'`` (our export's
    formula escape) removed; other values unchanged."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] == "'":
            text = text[1:].strip()
        if len(text) <= LONGEST_EMPTY and text.lower() in EMPTY_CELLS:
            return None
        return text or None
    return value
