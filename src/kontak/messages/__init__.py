"""User-facing messages of the core, in English and Bahasa Indonesia.

A :class:`Text` is the English message as a ``str`` (so logs, the CLI and the API read it
as is) that also keeps its catalog key and parameters, so the pages and the API can render
it in the reader's language: ``translate(text, "id")``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = ("en", "id")
_DIR = Path(__file__).parent


@cache
def catalog(locale: str) -> dict[str, str]:
    return dict(json.loads((_DIR / f"{locale}.json").read_text(encoding="utf-8")))


def render(locale: str, key: str, params: dict[str, Any]) -> str:
    template = catalog(locale if locale in LOCALES else "en").get(key) or catalog("en")[key]
    return template.format(**{k: _param(locale, v) for k, v in params.items()})


@dataclass(frozen=True)
class Join:
    """Several parameters shown as one, separated by ``sep``."""

    items: tuple[Any, ...]
    sep: str = ", "


def _param(locale: str, value: Any) -> Any:
    if isinstance(value, Text):
        return value.in_locale(locale)
    if isinstance(value, Join):
        return value.sep.join(str(_param(locale, v)) for v in value.items)
    return value


class Text(str):
    """An English message that remembers its key and parameters."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, /, **params: Any) -> Text:
        text = super().__new__(cls, render("en", key, params))
        text.key = key
        text.params = params
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by key and parameters (the import's worker processes send Texts back).
        return (_make_text, (self.key, self.params))

    def in_locale(self, locale: str) -> str:
        return render(locale, self.key, self.params)

    def to_json(self) -> dict[str, Any]:
        """Key and parameters, for storing (nested Texts become nested objects)."""
        return {"key": self.key, "params": {k: _dump(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Text:
        return cls(data["key"], **{k: _load(v) for k, v in data.get("params", {}).items()})


def _make_text(key: str, params: dict[str, Any]) -> Text:
    return Text(key, **params)


def _dump(value: Any) -> Any:
    if isinstance(value, Text):
        return {"$text": value.to_json()}
    if isinstance(value, Join):
        return {"$join": [_dump(v) for v in value.items], "sep": value.sep}
    return value


def _load(value: Any) -> Any:
    if isinstance(value, dict) and "$text" in value:
        return Text.from_json(value["$text"])
    if isinstance(value, dict) and "$join" in value:
        return Join(tuple(_load(v) for v in value["$join"]), value.get("sep", ", "))
    return value


def translate(message: str, locale: str) -> str:
    """``message`` in ``locale`` when it is a Text; other strings are returned as they are."""
    return message.in_locale(locale) if isinstance(message, Text) else message


def stored(message: str) -> str | None:
    """The JSON to store beside a message so that it can be translated later."""
    return json.dumps(message.to_json(), ensure_ascii=False) if isinstance(message, Text) else None


def restore(message: str, data: str | None) -> str:
    """The message back as a Text, if its key and parameters were stored."""
    if not data:
        return message
    try:
        return Text.from_json(json.loads(data))
    except (KeyError, ValueError, TypeError):
        return message
