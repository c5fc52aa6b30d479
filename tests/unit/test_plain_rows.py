"""Differential test of the import's fast row path: for every row it accepts,
``RowChecker.plain`` gives exactly what the general ``RowChecker.check_any`` gives (same
values, no error). Corpora: the benchmark generator, every real-world file, and rows
mutated at random in the ways people and spreadsheets write cells."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from benchmarks.generate import HEADER, rows
from hypothesis import example, given
from hypothesis import strategies as st

from kontak.contact.normalize import PLATFORMS, normalize_handle, phone_fast
from kontak.custom_field.values import FieldSpec
from kontak.files.cells import cell_text
from kontak.files.csv_reader import read_csv
from kontak.files.errors import FileRejected
from kontak.files.headers import map_headers
from kontak.files.table import Limits
from kontak.import_job.checks import RowChecker, plain_handle, plain_phone_digits

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"

FIELDS = [
    FieldSpec("kota", "Kota", "text"),
    FieldSpec("umur", "Umur", "number", required=True),
    FieldSpec("aktif", "Aktif", "boolean"),
    FieldSpec("lahir", "Lahir", "date"),
    FieldSpec("paket", "Paket", "select", options=("Gold", "Silver")),
]
CUSTOM_HEADERS = ["Kota", "Umur", "Aktif", "Lahir", "Paket"]

# What a cell may turn into: spaces, quotes, case, markers, odd characters, long text.
MUTATIONS: list[Callable[[str], str]] = [
    lambda v: "",
    lambda v: "  " + v + " ",
    lambda v: "'" + v,
    lambda v: v.upper(),
    lambda v: v.replace(" ", "  "),
    lambda v: v.replace(" ", "\t"),
    lambda v: v + "\n" + v,
    lambda v: "-",
    lambda v: "N/A",
    lambda v: "#REF!",
    lambda v: v + "é",
    lambda v: v + "\ufffd",
    lambda v: v + "\u200b",
    lambda v: "x" * 600,
    lambda v: v + "," + v,
    lambda v: v + ", ,",
    lambda v: "https://instagram.com/" + v.lstrip("@"),
    lambda v: "@" + v,
    lambda v: v + ".0",
    lambda v: v + "/0812",
    lambda v: "+62 (0)" + v,
    lambda v: "(" + v + ")",
    lambda v: v + "@",
    lambda v: v.replace(".", ".."),
    lambda v: "Whats App",
    lambda v: "WA",
    lambda v: "sms",
    lambda v: "1.234.567,5",
    lambda v: "12,5",
    lambda v: "31/12/2000",
    lambda v: "ya",
    lambda v: "gold",
    lambda v: "Gold",
    lambda v: "=HYPERLINK(1)",
]


def checker(headers: list[str], fields: list[FieldSpec] | None = None) -> RowChecker:
    fields = fields or []
    return RowChecker(
        map_headers(headers, [f.key for f in fields]),
        region="ID",
        fields=fields,
        max_cell_chars=2000,
    )


def assert_agrees(check: RowChecker, row: int, cells: list[Any]) -> bool:
    """Whether the fast path took the row (and if so, that it agrees)."""
    fast = check.plain(list(cells))
    if fast is None:
        return False
    slow = check.check_any(row, list(cells))
    assert slow.errors == [], (cells, slow.errors)
    assert fast == slow.values, cells
    return True


def test_generated_rows_take_the_fast_path_and_agree() -> None:
    check = checker(list(HEADER))
    sample = rows(5000, duplicates=0.01, invalid=0.01)
    taken = sum(assert_agrees(check, n, cells) for n, cells in enumerate(sample, start=2))
    assert taken > 0.97 * len(sample)


def test_mutated_rows_agree() -> None:
    rng = random.Random(5)
    headers = [*HEADER, *CUSTOM_HEADERS]
    check = checker(headers, FIELDS)
    base = rows(3000, seed=11)
    taken = 0
    for n, cells in enumerate(base, start=2):
        cells = [*cells, rng.choice(["Bandung", ""]), str(rng.randint(1, 90)), "", "", ""]
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(cells))
            cells[at] = rng.choice(MUTATIONS)(cells[at] or rng.choice(base)[at % 13])
        if rng.random() < 0.1:
            cells = cells[: rng.randint(1, len(cells))]
        if rng.random() < 0.05:
            cells = [*cells, rng.choice(["", "extra"])]
        taken += assert_agrees(check, n, cells)
    assert 0 < taken < len(base)  # both paths are exercised


# Real files have their own headers: each template column takes the first column whose
# header holds one of these words, so that their real cells go through both paths.
PROJECTION = {
    "name": ("display name", "first_name", "first name", "name"),
    "email": ("email", "mail"),
    "phone": ("mobile", "phone"),
    "tags": ("tags",),
    "linkedin": ("linkedin",),
}


@pytest.mark.parametrize("name", sorted(p.name for p in REALWORLD.glob("*.csv")))
def test_realworld_rows_agree(name: str) -> None:
    try:
        table = read_csv(REALWORLD / name, Limits())
    except FileRejected:
        pytest.skip(f"{name} cannot be read as a table at all")
    lowered = [h.lower() for h in table.headers]
    where: dict[int, int] = {}
    for field, words in PROJECTION.items():
        found = [i for w in words for i, h in enumerate(lowered) if w in h]
        if found:
            where[HEADER.index(field)] = found[0]
    check = checker(list(HEADER))
    seen = 0
    for row, cells in table.rows:
        projected = [cells[where[i]] if where.get(i, 99) < len(cells) else "" for i in range(13)]
        assert_agrees(check, row, projected)
        assert_agrees(check, row, [*cells[: len(HEADER)], *[""] * (13 - len(cells))][:13])
        seen += 1
    assert seen > 0


TAGGED: list[str] = list(rows(1)[0])


@given(
    st.text(alphabet="aB1 ,-\t", max_size=40)
    | st.builds(lambda n, rest: "a" * n + rest, st.integers(95, 105), st.sampled_from(["", ",b"]))
)
@example("vip, VIP ,pelanggan")
@example("a  b, c")
@example(",,")
@example(" , vip,vip")
@example("a" * 100 + ", b")
@example("a" * 101 + ", b")
def test_tag_cells_agree(cell: str) -> None:
    """Tags read by the fast path: trimmed, lower-cased, each once, in order; a tag with
    two spaces in a row or over 100 characters goes the general way (which reports it)."""
    cells = list(TAGGED)
    cells[HEADER.index("tags")] = cell
    check = checker(list(HEADER))
    if assert_agrees(check, 2, cells):
        return
    # Declined: only for what the general path changes or reports, or for text beyond
    # printable ASCII (a tab, a control character), which the fast path never reads.
    names = [t.strip().lower() for t in cell.split(",")]
    printable = cell.isascii() and cell.isprintable()
    assert any("  " in t or len(t) > 100 for t in names) or not printable, cell


def test_rows_the_fast_path_must_leave_to_the_general_check() -> None:
    check = checker(list(HEADER))
    good = rows(1)[0]
    assert check.plain(list(good)) is not None
    for at, value in [
        (0, ""),  # no name: an error
        (1, "budi@@contoh.id"),  # an error
        (2, "0812-3456"),  # too short: an error
        (2, "0812 3456 7890 / 0813"),  # two numbers in one cell
        (2, "8.12345678901E+11"),  # Excel's scientific notation
        (3, "pigeon"),  # unknown channel
        (0, "Dédé"),  # non-ASCII text goes the general way
        (7, "budi!"),  # not a handle
    ]:
        cells = list(good)
        cells[at] = value
        assert check.plain(cells) is None, (at, value)
    assert check.plain([*good, "extra"]) is None
    assert check.plain([1.0, *good[1:]]) is None  # a workbook number


def test_workbook_phone_numbers_take_the_fast_path_and_agree() -> None:
    """A workbook's phone column often holds numbers (Excel keeps 6281234567890, or
    81234567890 once it dropped the leading zero, typed in a cell as a number).
    RowChecker.fast writes such a number as text and takes the row the fast way: its
    values are exactly check_any's for the row as the workbook gave it, and the cells it
    hands on for the report are the text cell_text shows."""
    rng = random.Random(3)
    check = checker(list(HEADER))
    odd = [0.0, 8.0, 62.0, 1e15, 999999999999999.0, 1e16, 81234567890.5, -81234567890.0]
    odd += [float("nan"), float("inf"), 6281234567890.0, 81234567890.0, 1.0]
    taken = 0
    sample = rows(3000, seed=13)
    for n, cells in enumerate(sample, start=2):
        digits = re.sub(r"\D", "", cells[2])
        # "0812…" typed: Excel drops the 0; one in ten an odd number.
        number = rng.choice(odd) if rng.random() < 0.1 else float(digits.lstrip("0") or "0")
        book: list[Any] = [*cells[:2], number, *cells[3:]]
        if rng.random() < 0.05:
            book[4] = 12.0  # another number: the general way
        fast = check.fast(list(book))
        slow = check.check_any(n, list(book))
        if fast is None:
            continue
        taken += 1
        values, texts = fast
        assert slow.errors == [], (book, slow.errors)
        assert values == slow.values, book
        assert texts == [cell_text(c) for c in book]
        assert check.check(n, list(book)).values == slow.values
    # Left to the general check: the odd numbers, the rows with another number, and
    # "+62 (0)8…" as digits (62081…, which only libphonenumber reads): ~25%.
    assert 0.7 * len(sample) < taken < 0.8 * len(sample)


@given(
    st.from_regex(r" ?@{0,2}[A-Za-z0-9._\-]{0,12}(/[a-z]*)? ?", fullmatch=True)
    | st.sampled_from(["www.budi", "WWW.budi.id", "@www.budi", "http://x", "x" * 101, "..."])
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=16)
    | st.text(max_size=8)
)
def test_plain_handles_are_what_normalize_handle_makes_of_them(part: str) -> None:
    handle = plain_handle(part)
    if handle is None:
        return
    for platform in PLATFORMS:
        assert normalize_handle(platform, part) == handle, (platform, part)


# What the fast path read phones with before plain_phone_digits (a regex and a translate).
_OLD_PLAIN_PHONE = re.compile(r"\+?[\d \-()]+")
_OLD_NOT_DIGITS = str.maketrans("", "", " -()+")


@given(
    st.from_regex(r"\+?(62|0|\(0\)|\(62\))?[ \-(]{0,2}8[0-9 \-()]{7,14}", fullmatch=True)
    | st.text(alphabet="0123456789 -()+.x/", max_size=24)
    | st.text(max_size=24)
)
@example("+62 (0)812-3456-7890")
@example("()")
@example("+")
@example("0812 3456 7890")
@example("++62812")
@example("62+812")
def test_phone_digits_read_as_the_regex_and_translate_read_them(phone: str) -> None:
    # The fast path sees ASCII rows only (RowChecker.plain checks the row first).
    if not phone.isascii():
        assert plain_phone_digits(phone) is None
        return
    old = None
    if _OLD_PLAIN_PHONE.fullmatch(phone):
        old = phone_fast(phone, phone.translate(_OLD_NOT_DIGITS), "ID")
    digits = plain_phone_digits(phone)
    new = None if digits is None else phone_fast(phone, digits, "ID")
    assert new == old
