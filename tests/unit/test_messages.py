"""Every message exists in English and Bahasa Indonesia, with the same placeholders, and
survives being stored and read back."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from kontak.messages import Join, Text, catalog, restore, stored, translate

WEB_I18N = Path(__file__).resolve().parents[2] / "src" / "kontak" / "web" / "i18n"


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_core_catalogs_match() -> None:
    english, indonesian = catalog("en"), catalog("id")
    assert set(english) == set(indonesian)
    for key, template in english.items():
        assert placeholders(template) == placeholders(indonesian[key]), key
        assert template != indonesian[key] or key.startswith("header.unknown_one"), key


def test_page_catalogs_match() -> None:
    english = json.loads((WEB_I18N / "en.json").read_text(encoding="utf-8"))
    indonesian = json.loads((WEB_I18N / "id.json").read_text(encoding="utf-8"))
    assert set(english) == set(indonesian)
    for key, template in english.items():
        assert placeholders(template) == placeholders(indonesian[key]), key


def test_text_is_english_and_translates_with_nested_parts() -> None:
    reason = Text("crash.signal", signal="SIGABRT")
    text = Text("file.crashed", reason=reason)
    assert text.startswith("The file could not be read: the reader stopped on it (SIGABRT).")
    assert translate(text, "id").startswith("File tidak dapat dibaca: pembaca berhenti")
    joined = Text(
        "summary.rejected",
        parts=Join((Text("summary.in_file_one"), Text("summary.errors", count=3)), "; "),
    )
    assert "1 value is repeated in the file; 3 cells have errors" in joined
    assert "1 nilai muncul berulang di file; 3 sel berisi kesalahan" in translate(joined, "id")


def test_stored_texts_come_back_translatable() -> None:
    text = Text(
        "summary.completed",
        done=Join((Text("summary.created", count=5), Text("summary.updated", count=2))),
    )
    again = restore(str(text), stored(text))
    assert again == text
    assert translate(again, "id") == "Berhasil diimpor: 5 kontak dibuat, 2 diperbarui."
    assert restore("plain", None) == "plain"
    assert restore("plain", "not json") == "plain"
    assert translate("plain", "id") == "plain"


@pytest.mark.parametrize("locale", ["en", "id", "xx"])
def test_unknown_locale_falls_back_to_english(locale: str) -> None:
    assert translate(Text("name.required"), locale)
