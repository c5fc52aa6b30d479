"""The column-wise CSV writer gives exactly the bytes of ``csv.writer`` (minimal quoting,
CRLF) over formula-escaped cells, whatever the cells hold: every export and report is
written by it, and the importer reads what ``csv.writer`` writes."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from kontak.files.writers import csv_chunks, csv_column, csv_lines, escape_formula

# Characters the writer treats specially, the column separator it joins with, and a few
# others, so that hypothesis puts them at the starts, ends and middles of cells often.
SPECIAL = ",\"\r\n\t=+-@\x00' ;"
cells = st.text(alphabet=st.sampled_from(SPECIAL) | st.characters(codec="utf-8"), max_size=12)


def reference(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([escape_formula(c) for c in row])
    return out.getvalue()


@settings(max_examples=400)
@given(st.integers(1, 5).flatmap(lambda w: st.lists(st.lists(cells, min_size=w, max_size=w))))
def test_lines_are_those_of_csv_writer(rows: list[list[str]]) -> None:
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else []
    assert csv_lines(columns) == reference(rows)


@settings(max_examples=200)
@given(st.lists(st.lists(cells, max_size=4), max_size=12))
def test_ragged_rows_are_those_of_csv_writer(rows: list[list[str]]) -> None:
    """A report's rows are the file's own lines: their lengths differ."""
    written = b"".join(csv_chunks(["a", "b"], rows)).decode("utf-8")
    assert written == "\ufeff" + reference([["a", "b"], *rows])


def test_each_kind_of_cell_in_one_column() -> None:
    column = ["", "plain", "=1+2", "+6281234567890", "-5", "@x", "\tx", "\rx", "a,b", 'a"b', "a\nb"]
    expected = [reference([[c, ""]])[: -len(",\r\n")] for c in column]
    assert list(csv_column(column)) == expected
    assert expected[3] == "'+6281234567890"
    assert expected[7] == '"\'\rx"'


def test_a_separator_inside_a_cell_is_only_a_cell() -> None:
    """The column is joined with NUL to be checked whole; a NUL in a cell followed by a
    formula character is no cell start."""
    assert list(csv_column(["a\x00=b", "c"])) == ["a\x00=b", "c"]
    assert list(csv_column(["a", "\x00=b"])) == ["a", "\x00=b"]
