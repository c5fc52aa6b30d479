"""How the staging file keeps a row's cells and its tags: any text comes back exactly."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from kontak.import_job.staging import _json_strings, cells_from, cells_text


@given(st.lists(st.text()))
def test_cells_come_back_exactly(cells: list[str]) -> None:
    assert cells_from(cells_text(cells)) == cells


def test_the_usual_cells_are_joined_and_the_unusual_kept_as_json() -> None:
    assert cells_text(["Budi", "", "0812"]) == "\x00Budi\x00\x000812"
    assert cells_text([""]) == "\0"
    assert cells_from(cells_text([])) == []
    assert cells_from(cells_text(["a\0b", "c"])) == ["a\0b", "c"]
    assert cells_text(["a\0b"]).startswith("[")
    assert cells_from('["a", "b"]') == ["a", "b"]  # files staged before this form


@given(st.lists(st.text(), min_size=1))
def test_lists_of_strings_are_written_as_json_writes_them(values: list[str]) -> None:
    assert _json_strings(values) == json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def test_tags_that_need_escaping_are_written_as_json_writes_them() -> None:
    for values in (['a"b'], ["a", 'b"'], ["a\\b"], ["tab\there"], ["x", "\u2028"], ["vip", "b2b"]):
        expected = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        assert _json_strings(values) == expected, values
