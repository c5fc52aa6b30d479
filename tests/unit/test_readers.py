"""Readers: the file's first bytes decide its kind; every encoding, delimiter and quoting
that real spreadsheets produce reads the same; broken files are refused with a reason."""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kontak.files.csv_reader import read_csv, split_line
from kontak.files.errors import FileRejected
from kontak.files.headers import map_headers
from kontak.files.sniff import sniff
from kontak.files.table import Limits
from kontak.files.xlsx_reader import read_xlsx
from tests.files import csv_bytes, far_corner_xlsx, strip_dimension, write, xlsx_bytes

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"
LIMITS = Limits()
ROWS = [
    ["name", "phone", "address"],
    ["Budi", "0812-3456-7890", "Jl. Merdeka 1"],
    ["Sité Ümi", "0813", "Bandung"],
]


def rows_of(
    path: Path, limits: Limits = LIMITS
) -> tuple[list[str], list[tuple[int, list[object]]]]:
    table = read_xlsx(path, limits) if sniff(path) == "xlsx" else read_csv(path, limits)
    return table.headers, list(table.rows)


@pytest.mark.parametrize(
    ("encoding", "delimiter", "newline"),
    [
        ("utf-8", ",", "\r\n"),
        ("utf-8-sig", ",", "\n"),
        ("utf-8", ";", "\r\n"),
        ("utf-16", "\t", "\r\n"),
        ("utf-16-le", "\t", "\n"),
        ("cp1252", ";", "\r\n"),
        ("utf-8", "\t", "\r"),
    ],
)
def test_csv_encodings_and_delimiters_read_the_same(
    tmp_path: Path, encoding: str, delimiter: str, newline: str
) -> None:
    path = write(
        tmp_path, "c.csv", csv_bytes(ROWS, delimiter=delimiter, encoding=encoding, newline=newline)
    )
    headers, rows = rows_of(path)
    assert headers == ROWS[0]
    assert rows == [(2, ROWS[1]), (3, ROWS[2])]


def test_quoted_newlines_blank_rows_and_trailing_delimiters(tmp_path: Path) -> None:
    data = b'name,phone,address,\r\n"Budi","0812","Jl. A\r\nRT 1",\r\n,,,\r\n\r\nAni,0813,"say ""hi""",\r\n'
    headers, rows = rows_of(write(tmp_path, "c.csv", data))
    assert headers == ["name", "phone", "address", ""]
    assert rows == [
        (2, ["Budi", "0812", "Jl. A\r\nRT 1", ""]),
        (5, ["Ani", "0813", 'say "hi"', ""]),
    ]


def test_unbalanced_quote_rejects_instead_of_merging_rows(tmp_path: Path) -> None:
    data = b'name,phone\nBudi,"0812\nAni,0813\nCici,0814\n'
    with pytest.raises(FileRejected, match="quote"):
        rows_of(write(tmp_path, "c.csv", data))


def test_csv_limits(tmp_path: Path) -> None:
    small = Limits(max_rows=2, max_columns=3, max_cell_chars=10)
    many = write(tmp_path, "many.csv", csv_bytes([["name", "phone"]] + [["a", "1"]] * 3))
    with pytest.raises(FileRejected, match="more than 2 contacts"):
        rows_of(many, small)
    wide = write(tmp_path, "wide.csv", csv_bytes([["a", "b", "c", "d"]]))
    with pytest.raises(FileRejected, match="4 columns"):
        rows_of(wide, small)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 stuff", "PDF"),
        (bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 600, "97-2003"),
        (b"\x00\x01\x02\x03\x04\x05binary" * 50, "not a CSV or XLSX"),
    ],
)
def test_sniff_refuses_what_is_not_csv_or_xlsx(tmp_path: Path, data: bytes, says: str) -> None:
    with pytest.raises(FileRejected, match=says):
        sniff(write(tmp_path, "f.xlsx", data))


def test_password_protected_workbook_is_named_as_such() -> None:
    with pytest.raises(FileRejected, match="password-protected"):
        sniff(REALWORLD / "dimastbk__python-calamine__password.xlsx")


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(FileRejected, match="ZIP archive"):
        sniff(write(tmp_path, "f.xlsx", buffer.getvalue()))


def test_names_do_not_decide_the_format(tmp_path: Path) -> None:
    assert sniff(write(tmp_path, "really-csv.xlsx", csv_bytes(ROWS))) == "csv"
    assert sniff(write(tmp_path, "really-xlsx.csv", xlsx_bytes(ROWS))) == "xlsx"


def test_xlsx_numbers_dates_and_row_numbers(tmp_path: Path) -> None:
    data = xlsx_bytes([["name", "phone"], ["Budi", 81234567890], [None, None], ["Ani", "0813"]])
    headers, rows = rows_of(write(tmp_path, "c.xlsx", data))
    assert headers == ["name", "phone"]
    assert rows == [(2, ["Budi", 81234567890.0]), (4, ["Ani", "0813"])]


def test_a_workbook_rereads_its_rows_from_memory(tmp_path: Path) -> None:
    # The parsing workers read their share of a workbook with Table.reread (no row through
    # a pipe): the same numbered rows as the first read, blank rows above the header and
    # within the data included, however often it is called.
    data = xlsx_bytes([[None], ["name", "phone"], ["Budi", 812345], [None, None], ["Ani", "0813"]])
    table = read_xlsx(write(tmp_path, "c.xlsx", data), LIMITS)
    try:
        assert table.reread is not None
        first = list(table.rows)
        assert first == [(3, ["Budi", 812345.0]), (5, ["Ani", "0813"])]
        assert list(table.reread()) == first
        assert list(table.reread()) == first
    finally:
        table.close()


def test_xlsx_skips_hidden_and_empty_sheets(tmp_path: Path) -> None:
    data = xlsx_bytes(ROWS, before=[("Secret", True)])
    headers, rows = rows_of(write(tmp_path, "c.xlsx", data))
    assert headers == ROWS[0]
    assert len(rows) == 2


def test_xlsx_huge_declared_extent_is_refused_before_parsing(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="XFD"):
        read_xlsx(write(tmp_path, "bomb.xlsx", far_corner_xlsx()), LIMITS)


def test_xlsx_zip_bomb_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<" + "a" * 50_000_000 + ">")
    with pytest.raises(FileRejected, match="ZIP bomb"):
        read_xlsx(write(tmp_path, "zb.xlsx", buffer.getvalue()), LIMITS)


def test_xml_entities_are_refused(tmp_path: Path) -> None:
    data = xlsx_bytes(ROWS)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/workbook.xml":
                content = content.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY a "aaaa">]>', 1)
            target.writestr(info.filename, content)
    with pytest.raises(FileRejected, match="XML"):
        read_xlsx(write(tmp_path, "xxe.xlsx", out.getvalue()), LIMITS)


def test_strip_dimension_helper_really_strips(tmp_path: Path) -> None:
    data = strip_dimension(xlsx_bytes(ROWS))
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert b"<dimension" not in sheet


@pytest.mark.parametrize(
    ("name", "headers", "expected"),
    [
        ("utf16", None, "First Name"),
        ("shiftjis", None, "First Name"),
        ("semicolon", ["Display Name", "First Name", "Last Name", "Primary Email"], None),
    ],
)
def test_realworld_encodings_decode(
    name: str, headers: list[str] | None, expected: str | None
) -> None:
    path = next(REALWORLD.glob(f"*{name}*"))
    table = read_csv(path, LIMITS)
    if headers:
        assert table.headers == headers
    else:
        assert table.headers[0] == expected
    rows = list(table.rows)
    assert rows
    if name == "shiftjis":
        assert "名無しの権兵衛" in rows[0][1]


def test_header_aliases_in_english_and_indonesian() -> None:
    columns = map_headers(
        ["Nama", "No. HP", "E-mail", "Alamat", "Label", "Instagram", "tier"], ["tier"]
    )
    assert columns.fields == ["name", "phone", "email", "address", "tags", "instagram", "cf:tier"]


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        (["name", "emial"], "did you mean 'email'"),
        (["name", "email", "Surel"], "same field"),
        (["phone", "email"], "no 'name' column"),
        (["name", "address"], "no column to reach"),
    ],
)
def test_header_problems_name_the_columns(headers: list[str], says: str) -> None:
    with pytest.raises(FileRejected, match=says):
        map_headers(headers)


def test_report_problem_column_is_ignored_on_reimport() -> None:
    assert map_headers(["problem", "name", "phone"]).fields == [None, "name", "phone"]


# --- the line splitter against the csv module ---------------------------------------

FIELD_LIMIT = 131_072
ENDINGS = ("", "\n", "\r\n", "\r")


def csv_module_reads(line: str, delimiter: str) -> list[str] | None:
    """What ``csv.reader(strict=True)`` makes of ``line`` as a whole file: its one record,
    or None (an error, or a record that needs more lines)."""
    try:
        records = list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return records[0] if len(records) == 1 else None


def agrees(line: str, delimiter: str) -> None:
    cells = split_line(line, delimiter, FIELD_LIMIT)
    if cells is not None:  # declined lines go to the csv module itself
        assert cells == csv_module_reads(line, delimiter), repr(line)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_split_line_reads_every_short_line_as_the_csv_module(delimiter: str) -> None:
    """Every line of up to 6 characters built from a letter, a space, a quote and two
    delimiters (the delimiter and one that is not), with each line ending: 78,124 lines."""
    other = ";" if delimiter != ";" else ","
    alphabet = ("a", " ", '"', delimiter, other)
    quoted_split = 0
    for size in range(7):
        for body in itertools.product(alphabet, repeat=size):
            for ending in ENDINGS:
                line = "".join(body) + ending
                agrees(line, delimiter)
                split = split_line(line, delimiter, FIELD_LIMIT) is not None
                # Lines without quotes are all split here; of the others, those in the
                # usual shape ("a b",a,"" ...), not those the csv module must decide.
                assert split or '"' in line, repr(line)
                quoted_split += split and '"' in line
    assert quoted_split > 4_000


@settings(max_examples=600, deadline=None)
@given(
    line=st.text(alphabet=st.sampled_from('ab ",;\t"é\0\u00a0'), max_size=40),
    ending=st.sampled_from(ENDINGS),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_split_line_reads_longer_lines_as_the_csv_module(
    line: str, ending: str, delimiter: str
) -> None:
    agrees(line + ending, delimiter)


def test_split_line_reads_the_common_lines_and_declines_the_rest() -> None:
    assert split_line('Budi,"Jl. A, No. 1","vip, promo",\r\n', ",", FIELD_LIMIT) == [
        "Budi",
        "Jl. A, No. 1",
        "vip, promo",
        "",
    ]
    assert split_line('ab"c,d\n', ",", FIELD_LIMIT) is None  # text for the csv module
    assert split_line("\r\n", ",", FIELD_LIMIT) == []
    assert split_line('"open, goes on\n', ",", FIELD_LIMIT) is None
    assert split_line('"say ""hi""",x\n', ",", FIELD_LIMIT) is None
    assert split_line('"a"b,c\n', ",", FIELD_LIMIT) is None
    assert split_line("a\0b\n", ",", FIELD_LIMIT) is None
    assert split_line("x" * 11 + "\n", ",", 10) is None


def reference_rows(path: Path, encoding: str) -> list[tuple[int, list[str]]] | tuple[str, int]:
    """The rows as the csv module alone reads them (the reader before the line splitter):
    (row number, cells) of every data row, or the rejection's (key, row)."""
    out: list[tuple[int, list[str]]] = []
    with path.open(encoding=encoding, newline="") as text:
        reader = csv.reader(text, delimiter=",", strict=True)
        number = 0
        header = True
        while True:
            number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return out
            except csv.Error:
                return ("file.malformed_csv", number)
            if not cells or all(not c.strip() for c in cells):
                continue
            if header:
                header = False
                continue
            out.append((number, cells))


def kontak_rows(path: Path) -> list[tuple[int, list[str]]] | tuple[str, int]:
    try:
        return [(n, [str(c) for c in cells]) for n, cells in read_csv(path, LIMITS).rows]
    except FileRejected as exc:
        return (exc.message.key, int(exc.message.params["row"]))


@settings(max_examples=400, deadline=None)
@given(
    records=st.lists(
        st.lists(
            st.one_of(
                st.text(alphabet=st.sampled_from("ab ,é"), max_size=6),
                st.text(alphabet=st.sampled_from('ab ,"\n\r'), max_size=6).map(
                    lambda s: '"' + s.replace('"', '""') + '"'
                ),
                st.text(alphabet=st.sampled_from('ab ",\n'), max_size=6),  # maybe malformed
            ),
            min_size=0,
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    ),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_a_file_reads_the_same_rows_or_the_same_rejection_as_with_the_csv_module_alone(
    tmp_path_factory: pytest.TempPathFactory, records: list[list[str]], ending: str
) -> None:
    text = "name,phone" + ending + "".join(",".join(r) + ending for r in records)
    path = tmp_path_factory.mktemp("lines") / "file.csv"
    path.write_bytes(text.encode("utf-8"))
    expected = reference_rows(path, "utf-8")
    assert kontak_rows(path) == expected, repr(text)
