"""How the staging file keeps a row's cells and its tags: any text comes back exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kontak.import_job.staging import (
    ROWS_PER_INSERT,
    Stage,
    _json_strings,
    cells_from,
    cells_text,
)


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


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=6, max_size=6),
            st.integers(0, 3),
            st.booleans(),
            st.lists(st.sampled_from(["vip", "baru", "reseller"]), max_size=2),
        ),
        max_size=300,
    )
)
def test_staged_records_are_stored_exactly_and_in_order(
    rows: list[tuple[list[Any], int, bool, list[str]]],
) -> None:
    # The staging writes put up to ROWS_PER_INSERT rows in one statement: whatever the
    # count (none, fewer, a multiple, one more), every record lands once, in its order.
    with tempfile.TemporaryDirectory() as folder:
        stage = Stage(Path(folder) / "stage.db", create=True)
        try:
            expected: dict[str, list[tuple[Any, ...]]] = {
                "row": [],
                "key": [],
                "error": [],
                "tag_link": [],
            }
            for n, (values, keys, bad, tags) in enumerate(rows, start=2):
                row = (n, f"cells {n}", 0 if bad else 1, f"id{n}", *values, "", "")
                key_rows = [
                    (n, "instagram", f"h{n}_{k}", f"H{n}_{k}", f"s{n}_{k}") for k in range(keys)
                ]
                errors = [(n, "Email", values[1], "bad", None)] if bad else []
                stage.add((row, key_rows, errors, tags))
                expected["row"].append(row)
                expected["key"].extend(key_rows)
                expected["error"].extend(errors)
                expected["tag_link"].extend((n, t) for t in tags)
                if n % 97 == 0:  # flushes of odd sizes too
                    stage.flush()
            stage.flush()
            for table, records in expected.items():
                stored = stage.db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
                assert stored == records, table
        finally:
            stage.close()


def test_a_flush_holds_many_statements_of_rows_and_a_remainder() -> None:
    assert ROWS_PER_INSERT > 1
    with tempfile.TemporaryDirectory() as folder:
        stage = Stage(Path(folder) / "stage.db", create=True)
        try:
            count = ROWS_PER_INSERT * 3 + 5
            for n in range(count):
                stage.add(
                    (
                        (n, "c", 1, f"id{n}", "Budi", None, None, None, None, None, "", ""),
                        [],
                        [],
                        ["vip"],
                    )
                )
            stage.flush()
            assert stage.db.execute("SELECT count(*), min(row), max(row) FROM row").fetchone() == (
                count,
                0,
                count - 1,
            )
            assert stage.db.execute("SELECT count(*) FROM tag_link").fetchone() == (count,)
        finally:
            stage.close()


def test_matches_cut_short_leave_the_staging_file_whole(tmp_path: Path) -> None:
    # PostgreSQL's matches stream into the staging file; a connection lost midway raises
    # inside that write. The file's rollback must leave it readable (with no journal, a
    # ROLLBACK after pages went to disk left it malformed, and the job's pages with it).
    stage = Stage(tmp_path / "stage.db", create=True)
    stage.close()
    stage = Stage(tmp_path / "stage.db")
    stage.db.execute("PRAGMA cache_size = 8")  # pages go to disk before the end, as at 1M

    def matches(count: int, *, then_fail: bool = False) -> Any:
        for i in range(count):
            yield (i + 2, "email", f"orang{i}@contoh.id", f"01CONTACT{i:017d}")
        if then_fail:
            raise ConnectionError("the server closed the connection")

    # An import's first look, then a second after a lost race, cut short.
    stage.save_existing(matches(20_000))
    with pytest.raises(ConnectionError):
        stage.save_existing(matches(50_000, then_fail=True))
    assert stage.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert stage.count_existing() == 20_000  # as the last whole look left them
    assert stage.match_counts() == (20_000, [])
    stage.save_existing([(2, "phone", "+6281234567890", "01CONTACT")])
    assert stage.match_counts() == (1, [])
    stage.close()


_KILLED_WHILE_SAVING = """
import os, signal, sys
from kontak.import_job.staging import Stage

stage = Stage(sys.argv[1])
stage.db.execute("PRAGMA cache_size = 8")

def matches(count, kill_after=None):
    for i in range(count):
        if i == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        yield (i + 2, "email", f"orang{i}@contoh.id", f"01CONTACT{i:017d}")

stage.save_existing(matches(20_000))
stage.save_existing(matches(50_000, kill_after=30_000))
"""


def test_a_process_killed_while_saving_matches_leaves_them_as_the_last_whole_save(
    tmp_path: Path,
) -> None:
    # A server killed while the matches stream in leaves a hot journal beside the staging
    # file; whoever opens it next (the failed job's pages, its report) must find it whole,
    # as the last finished save left it.
    path = tmp_path / "stage.db"
    Stage(path, create=True).close()
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_SAVING, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert os.path.exists(f"{path}-journal")  # killed mid-transaction, not after it

    stage = Stage(path)
    assert stage.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert stage.count_existing() == 20_000
    assert stage.match_counts() == (20_000, [])
    stage.close()
    assert not os.path.exists(f"{path}-journal")
