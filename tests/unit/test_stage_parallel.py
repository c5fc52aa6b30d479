"""The parsing child stages a big file the same whether one process or several check it:
same rows in file order, same keys, errors and tags; a file the readers reject is rejected
the same way, whichever worker meets the bad row."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from benchmarks.generate import HEADER, rows

from kontak.files.errors import FileRejected
from kontak.files.headers import map_headers
from kontak.files.table import Limits
from kontak.ids import id_start
from kontak.import_job import stage
from kontak.import_job.checks import RowChecker
from kontak.import_job.staging import Stage
from tests.files import csv_bytes, xlsx_bytes

ROWS = stage.PARALLEL_FROM_ROWS + 3 * stage.CHUNK_ROWS + 17  # several chunks, a short last one


def spec(source: Path, target: Path, workers: int, **limits: Any) -> dict[str, Any]:
    return {
        "source": str(source),
        "stage": str(target),
        "region": "ID",
        "fields": [],
        "limits": {"max_rows": 1_048_576, **limits},
        "workers": workers,
    }


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything staged, ids left out (they are drawn afresh for each run)."""
    db = sqlite3.connect(path)
    try:
        return {
            "row": db.execute(
                "SELECT row, cells, valid, name, email, email_key, phone, channel, address,"
                " custom_fields, tags FROM row ORDER BY rowid"
            ).fetchall(),
            "key": db.execute("SELECT row, kind, key, display FROM key ORDER BY rowid").fetchall(),
            "error": db.execute("SELECT * FROM error ORDER BY rowid").fetchall(),
            "meta": db.execute("SELECT * FROM meta ORDER BY key").fetchall(),
            "ids": db.execute(
                "SELECT COUNT(DISTINCT contact_id), MIN(contact_id < lead) FROM"
                " (SELECT contact_id, LEAD(contact_id) OVER (ORDER BY row) AS lead FROM row)"
                " WHERE lead IS NOT NULL"
            ).fetchall(),
        }
    finally:
        db.close()


def indexes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    finally:
        db.close()


def contact_rows() -> list[list[str]]:
    data = rows(ROWS, duplicates=0.01, invalid=0.01)
    data[5][1] = "bukan email"  # errors near the start, the chunk edges and the end
    data[stage.CHUNK_ROWS * 7][2] = "0812"
    data[-1][0] = ""
    return [list(HEADER), *data]


class Made:
    """The module's test file of each kind and its staging by one process, each made once
    (a workbook of ROWS rows took seconds to write, and so did its staging): the tests
    read them and write beside their own files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.table = contact_rows()

    def source(self, kind: str) -> Path:
        path = self.folder / f"contacts.{kind}"
        if not path.exists():
            path.write_bytes(csv_bytes(self.table) if kind == "csv" else xlsx_bytes(self.table))
        return path

    def one(self, kind: str) -> Path:
        """The source of ``kind`` staged by one process."""
        path = self.folder / f"one-{kind}.db"
        if not path.exists():
            assert stage.run(spec(self.source(kind), path, workers=1)) == ROWS
        return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return Made(tmp_path_factory.mktemp("made"))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_parallel_staging_equals_one_process(tmp_path: Path, kind: str, made: Made) -> None:
    source, one, two = made.source(kind), made.one(kind), tmp_path / "two.db"
    assert stage.run(spec(source, two, workers=2)) == ROWS
    single, parallel = dump(one), dump(two)
    assert parallel == single
    assert len(single["row"]) == ROWS
    assert [r[0] for r in single["row"]] == sorted(r[0] for r in single["row"])
    assert single["ids"] == [(ROWS - 1, 1)]  # each id below the next: distinct, in file order
    assert {r[0] for r in single["error"]} >= {7, stage.CHUNK_ROWS * 7 + 2, ROWS + 1}
    assert not list(tmp_path.glob("*.part*.db"))  # the workers' files are gone


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_segments_are_announced_in_order_and_make_the_same_staging_file(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str], made: Made
) -> None:
    source, one, cut = made.source(kind), made.one(kind), tmp_path / "cut.db"
    capsys.readouterr()
    assert stage.run({**spec(source, cut, workers=2), "segments": 6}) == ROWS
    said = [line.split() for line in capsys.readouterr().out.splitlines()]
    announced = sorted(
        (int(n), int(r), int(e), p)
        for tag, n, r, e, p in (line for line in said if line[0] == "SEGMENT")
    )
    assert [n for n, *_ in announced] == list(range(6))
    assert [p for *_, p in announced] == [str(stage.segment_path(cut, n)) for n in range(6)]
    assert sum(r for _, r, _, _ in announced) == ROWS
    # The staging file names the segments and holds none of their rows until assembled.
    staged = Stage(cut)
    try:
        assert staged.pending_segments() == [stage.segment_path(cut, n) for n in range(6)]
        assert dump(cut)["row"] == []
        assert staged.count_errors() == len(dump(one)["error"])  # the segments' own
        staged.assemble()
        assert staged.pending_segments() == []
        staged.assemble()  # nothing left to do: no row twice
    finally:
        staged.close()
    assert dump(cut) == dump(one)  # assembled from the segments, in file order
    assert indexes(cut) == indexes(one)
    invalid = sum(e for _, _, e, _ in announced)
    assert invalid == len({r[0] for r in dump(one)["error"]}) > 0
    segments = [dump(stage.segment_path(cut, n))["row"] for n, *_ in announced]
    assert [row for rows_ in segments for row in rows_] == dump(one)["row"]


def test_a_file_shorter_than_estimated_announces_its_last_segments_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], made: Made
) -> None:
    source, target = made.source("csv"), tmp_path / "stage.db"
    limits = Limits()
    table = stage._open("csv", source, limits)
    checker = RowChecker(
        map_headers(table.headers, []), region="ID", fields=[], max_cell_chars=10_000
    )
    # The estimate says four times the rows: the second worker's run starts past the end.
    job = stage._Job("csv", source, limits, checker, 4 * ROWS, id_start(), id_start())
    try:
        count, _tags, pending = stage._in_parallel(job, table, target, 2, 4)
    finally:
        table.close()
    assert count == ROWS
    said = [line.split() for line in capsys.readouterr().out.splitlines()]
    rows_of = {int(n): int(r) for _, n, r, _, _ in (x for x in said if x[0] == "SEGMENT")}
    assert sorted(rows_of) == [0, 1, 2, 3]
    assert sum(rows_of.values()) == ROWS
    assert rows_of[3] == 0
    assert pending == [stage.segment_path(target, n).name for n in range(4)]
    Stage.append(target, [stage.segment_path(target, n) for n in range(4)])
    assert len(dump(target)["row"]) == ROWS


def test_workers_read_a_workbook_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: Made
) -> None:
    # When this process handed a workbook's chunks out through bounded queues, the second
    # worker waited while the first checked the whole first half: the workers took turns.
    # Now no row is read here; each forked worker rereads the cells loaded before the fork.
    source = made.source("xlsx")
    parent = os.getpid()
    opened = stage._open

    def open_watched(kind: str, path: Path, limits: Any) -> Any:
        table = opened(kind, path, limits)
        rows = table.rows

        def watched() -> Any:
            assert os.getpid() != parent, "the parsing child read rows for its workers"
            yield from rows

        table.rows = watched()
        return table

    monkeypatch.setattr(stage, "_open", open_watched)
    assert stage.run(spec(source, tmp_path / "stage.db", workers=2)) == ROWS
    assert dump(tmp_path / "stage.db")["row"][-1][0] == ROWS + 1


def test_a_malformed_row_far_into_the_file_rejects_it_in_parallel(
    tmp_path: Path, made: Made
) -> None:
    source = tmp_path / "contacts.csv"
    data = made.source("csv").read_bytes()
    lines = data.split(b"\r\n")
    bad = ROWS - 100
    lines[bad] = b'Budi,"budi@contoh.id,0812'  # a quote that never closes
    source.write_bytes(b"\r\n".join(lines))
    with pytest.raises(FileRejected) as caught:
        stage.run(spec(source, tmp_path / "stage.db", workers=2))
    assert caught.value.code == "file.malformed_csv"
    assert caught.value.message.params["row"] == bad + 1
    assert not list(tmp_path.glob("*.part*.db"))


def test_too_many_rows_is_rejected_in_parallel(tmp_path: Path, made: Made) -> None:
    with pytest.raises(FileRejected) as caught:
        stage.run(spec(made.source("csv"), tmp_path / "stage.db", workers=2, max_rows=ROWS - 1))
    assert caught.value.code == "file.too_many_rows"


def test_later_workers_take_shorter_runs_of_a_csv() -> None:
    """Each worker reads the rows before its run to drop them: the runs are cut so that
    reading those plus checking its own takes every worker as long."""
    assert stage._firsts(500, 2, 0.0) == [0, 250]
    assert stage._firsts(500, 4, 0.0) == [0, 125, 250, 375]
    firsts = stage._firsts(500, 4, 0.05)
    assert firsts[0] == 0
    runs = [b - a for a, b in itertools.pairwise([*firsts, 500])]
    assert runs == sorted(runs, reverse=True)
    work = [0.05 * first + run for first, run in zip(firsts, runs, strict=True)]
    assert max(work) - min(work) <= 1.5  # runs are whole chunks, each end rounded
    assert stage._firsts(1, 2, 0.05) == [0, 1]  # the last run takes what is left anyway


def test_a_workers_last_segments_are_its_smallest() -> None:
    """What is left to write once the checking ends is a worker's last segments: the
    segments are equal but for the last three, each smaller than the one before."""
    for parts in range(1, 8):
        starts = stage._starts(40, 290, parts)
        assert len(starts) == parts
        assert starts[0] == 40
        assert starts == sorted(starts)
        sizes = [b - a for a, b in itertools.pairwise([*starts, 290])]
        assert sum(sizes) == 250
        body, tail = sizes[: max(0, parts - 3)], sizes[max(0, parts - 3) :]
        assert max(body, default=0) - min(body, default=0) <= 1  # whole chunks
        assert tail == sorted(tail, reverse=True)
        if parts >= 2:
            assert sizes[-1] < 0.7 * sizes[0]
    # A run of fewer chunks than segments leaves some empty, none of a negative size.
    assert stage._starts(7, 9, 5) == [7, 7, 8, 8, 8]
    assert stage._starts(9, 9, 5) == [9] * 5
