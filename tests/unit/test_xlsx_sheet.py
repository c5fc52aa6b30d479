"""The XLSX writer's rows are the very bytes XlsxWriter's constant-memory mode writes for
the same cells (but for one escape XlsxWriter misses), and every workbook reads back."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from kontak.files.writers import write_xlsx

# What XlsxWriter escapes or marks (& < > control characters, _xHHHH_, non-characters,
# leading and trailing white space), so that hypothesis puts them everywhere.
SPECIAL = ["&", "<", ">", "\x00", "\x07", "\t", "\n", "\r", "\x0b", "\x1f", " ", "\xa0"]
SPECIAL += ["_x0041_", "_x", "\ufffe", "\uffff", '"', "'", "é", "😀", "\x7f", "\x7f "]
cells = st.lists(
    st.sampled_from(SPECIAL) | st.text(st.characters(codec="utf-8"), max_size=3), max_size=4
).map("".join)


def xlsxwriter_workbook(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """What write_xlsx was: XlsxWriter writing every cell itself."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    ws = workbook.add_worksheet("Contacts")
    text = workbook.add_format({"num_format": "@"})
    bold = workbook.add_format({"bold": True, "num_format": "@"})
    for col in range(len(header)):
        ws.set_column(col, col, 18, text)
    ws.freeze_panes(1, 0)
    for col, name in enumerate(header):
        ws.write_string(0, col, name, bold)
    for r, row in enumerate(rows, 1):
        for col, value in enumerate(row):
            if value:
                ws.write_string(r, col, value, text)
    workbook.close()


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist() if not name.startswith("docProps/")}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cells, max_size=4), max_size=12))
def test_rows_are_xlsxwriters_own_bytes(tmp_path: Path, rows: list[list[str]]) -> None:
    """Ragged rows, empty rows, rows wider than the header (a report's lines) included;
    XlsxWriter writes a text that looks like rich-text markup unescaped (see below)."""
    rows = [[c for c in row if not (c.startswith("<r>") and c.endswith("</r>"))] for row in rows]
    header = ["name", "email"]
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_xlsx(ours, header, rows)
    xlsxwriter_workbook(theirs, header, rows)
    assert entries(ours) == entries(theirs)


@pytest.mark.parametrize(
    "column",
    [["a ", "b"], ["a", " b", "c"], ["a", "b "], ["a\t", "b"], ["a", "\nb"], ["a\x7f ", "b"]],
)
def test_white_space_at_a_cells_edge_is_kept_in_a_plain_column(
    tmp_path: Path, column: list[str]
) -> None:
    """An ASCII column with nothing to escape is written without looking at each cell,
    unless one of its cells may begin or end with white space (``xml:space``)."""
    rows = [[c] for c in column]
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_xlsx(ours, ["name"], rows)
    xlsxwriter_workbook(theirs, ["name"], rows)
    assert entries(ours) == entries(theirs)


def test_a_million_rows_page_boundaries_and_long_text(tmp_path: Path) -> None:
    """Pages of rows meet without a seam; a text over Excel's 32,767 UTF-16 units is cut as
    XlsxWriter cuts it (without splitting a character outside the BMP)."""
    long = "a" * 32_766 + "😀" + "b"
    rows = [[f"r{i}", "" if i % 3 else f"e{i}"] for i in range(4_500)] + [["x", long]]
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_xlsx(ours, ["name", "email"], rows)
    xlsxwriter_workbook(theirs, ["name", "email"], rows)
    assert entries(ours) == entries(theirs)
    read = CalamineWorkbook.from_path(str(ours)).get_sheet_by_index(0).to_python()
    assert len(read) == 4_502
    assert read[-1][1] == "a" * 32_766


@pytest.mark.parametrize("name", ["<r>Budi & Sons</r>", "<r><t>x</t></r>", "<r></is></c></r>"])
def test_a_text_shaped_like_rich_text_markup_is_escaped(tmp_path: Path, name: str) -> None:
    """XlsxWriter wrote such a text raw into the sheet: a contact named ``<r>A & B</r>``
    made the export unreadable, and markup in a name went into the file as markup."""
    path = tmp_path / "export.xlsx"
    write_xlsx(path, ["name", "email"], [[name, "a@contoh.id"]])
    read = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert read == [["name", "email"], [name, "a@contoh.id"]]
