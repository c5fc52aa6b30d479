"""English and Bahasa Indonesia for every page string: one catalog per language."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALES = ("en", "id")
DEFAULT = "en"
_DIR = Path(__file__).parent


@cache
def catalog(locale: str) -> dict[str, str]:
    return dict(json.loads((_DIR / f"{locale}.json").read_text(encoding="utf-8")))


def translator(locale: str) -> Callable[..., str]:
    """``t(key, **params)``: the string in ``locale``, else English, else the key itself."""
    strings = catalog(locale if locale in LOCALES else DEFAULT)
    fallback = catalog(DEFAULT)

    def t(key: str, **params: object) -> str:
        text = strings.get(key) or fallback.get(key) or key
        return text.format(**params) if params else text

    return t


def negotiate(accept_language: str | None) -> str:
    """The first supported language of an Accept-Language header (``id`` or ``en``)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith(("id", "in")):
            return "id"
        if tag.startswith("en"):
            return "en"
    return DEFAULT
