"""Deferred search indexing (kontak.db.search_index, migration 0006) keeps its invariant:
a row is in its FTS5 index if and only if its rowid lies in no pending range, whatever
mix of single writes (triggers), deferred bulk writes, deletes, updates and partial
catch-ups happens; after a full catch-up SQLite's own integrity check agrees."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path

import pytest

from kontak.db import search_index
from kontak.db.migrate import upgrade
from kontak.db.session import make_engine

TABLES = ("contact", "social_account")
WORDS = ["budi", "santoso", "siti", "nur", "ayu", "eko", "putri", "dewi", "agus", "rina"]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "kontak.db"
    upgrade(f"sqlite:///{path}")
    return path


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)  # foreign keys off: rows stand alone


def _bulk(path: Path, seed: int, count: int) -> None:
    """One deferred bulk write of ``count`` contacts, on a connection of its own."""
    raw = _connect(path)
    try:
        Writer(raw, random.Random(seed)).bulk("contact", count)
    finally:
        raw.close()


class Writer:
    def __init__(self, raw: sqlite3.Connection, rng: random.Random) -> None:
        self.raw = raw
        self.rng = rng
        self.n = 0

    def _text(self) -> str:
        return " ".join(self.rng.sample(WORDS, 2)) + f" {self.rng.randrange(1000)}"

    def insert(self, table: str) -> None:
        self.n += 1
        if table == "contact":
            self.raw.execute(
                "INSERT INTO contact (id, organization_id, name, email_key, phone,"
                " custom_fields, source, created_at, updated_at)"
                " VALUES (?, 'org', ?, ?, ?, '{}', 'test', '2026-01-01', '2026-01-01')",
                (f"c{self.n:08d}", self._text(), f"u{self.n}@contoh.id", f"+62812{self.n:07d}"),
            )
        else:
            handle = self._text().replace(" ", "_")
            self.raw.execute(
                "INSERT INTO social_account (id, organization_id, contact_id, platform, handle,"
                " handle_key) VALUES (?, 'org', 'c', 'instagram', ?, ?)",
                (f"s{self.n:08d}", handle, f"{handle}_{self.n}"),
            )

    def bulk(self, table: str, count: int) -> None:
        self.raw.execute("BEGIN IMMEDIATE")
        deferral = search_index.defer(self.raw, table)
        assert deferral is not None
        for _ in range(count):
            self.insert(table)
        search_index.close(self.raw, deferral)
        self.raw.execute("COMMIT")

    def delete(self, table: str) -> None:
        self.raw.execute(
            f"DELETE FROM {table} WHERE rowid IN"
            f" (SELECT rowid FROM {table} ORDER BY random() LIMIT 1)"
        )

    def delete_last(self, table: str) -> None:
        self.raw.execute(f"DELETE FROM {table} WHERE rowid = (SELECT max(rowid) FROM {table})")

    def update(self, table: str) -> None:
        column = "name" if table == "contact" else "handle_key"
        self.raw.execute(
            f"UPDATE {table} SET {column} = ? WHERE rowid IN"
            f" (SELECT rowid FROM {table} ORDER BY random() LIMIT 1)",
            (self._text() + f" {self.n}",),
        )

    def catch_up_some(self, batch: int, ceiling: int | None = None) -> None:
        # A catch-up goes up to the rowids pending when it began: any of them, or beyond.
        ceilings = {
            table: self.rng.randrange(self.n + 2) if ceiling is None else ceiling
            for table in TABLES
        }
        self.raw.execute("BEGIN IMMEDIATE")
        search_index._index_batch(self.raw, batch, ceilings)
        self.raw.execute("COMMIT")


# Every text the writer stores holds two of WORDS, so a row is in its index if and only
# if the index gives its rowid for one of their first trigrams. (The indexes keep no
# per-row sizes since migration 0016, whose shadow table listed the indexed rowids.)
_ANY_WORD = " OR ".join(f'"{w[:3]}"' for w in WORDS)


def _indexed(raw: sqlite3.Connection, table: str) -> set[int]:
    index = search_index.INDEXES[table][0]
    return {r for (r,) in raw.execute(f"SELECT rowid FROM {index}({_ANY_WORD!r})")}


def _expected(raw: sqlite3.Connection, table: str) -> set[int]:
    ranges = raw.execute(
        "SELECT first_rowid, last_rowid FROM search_pending WHERE name = ?", (table,)
    ).fetchall()
    rows = {r for (r,) in raw.execute(f"SELECT rowid FROM {table}")}
    return {r for r in rows if not any(a <= r <= b for a, b in ranges)}


def _check(raw: sqlite3.Connection) -> None:
    for table in TABLES:
        assert _indexed(raw, table) == _expected(raw, table), table
    ranges = raw.execute(
        "SELECT name, first_rowid, last_rowid FROM search_pending ORDER BY name, first_rowid"
    ).fetchall()
    for (n1, _a1, b1), (n2, a2, _b2) in itertools.pairwise(ranges):
        assert n1 != n2 or b1 < a2, ranges  # ranges never overlap


def _integrity(raw: sqlite3.Connection) -> None:
    for index, _columns in search_index.INDEXES.values():
        raw.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('integrity-check', 1)")


def _verify(database: Path) -> set[int]:
    """The invariant and SQLite's own integrity check, on a connection of their own; the
    contacts' indexed rowids."""
    raw = _connect(database)
    try:
        _check(raw)
        _integrity(raw)
        return _indexed(raw, "contact")
    finally:
        raw.close()


@pytest.mark.parametrize("seed", range(12))
def test_any_mix_of_writes_keeps_the_invariant(database: Path, seed: int) -> None:
    rng = random.Random(seed)
    raw = _connect(database)
    writer = Writer(raw, rng)
    try:
        for _ in range(120):
            table = rng.choice(TABLES)
            step = rng.random()
            if step < 0.25:
                writer.insert(table)
            elif step < 0.4:
                writer.bulk(table, rng.randrange(0, 12))
            elif step < 0.55:
                writer.delete(table)
            elif step < 0.65:
                writer.delete_last(table)
            elif step < 0.8:
                writer.update(table)
            else:
                writer.catch_up_some(rng.randrange(1, 6))
            _check(raw)
    finally:
        raw.close()
    engine = make_engine(f"sqlite:///{database}")
    try:
        search_index.catch_up(engine, batch=4)
    finally:
        engine.dispose()
    raw = _connect(database)
    try:
        assert raw.execute("SELECT count(*) FROM search_pending").fetchone()[0] == 0
        _check(raw)
        _integrity(raw)
    finally:
        raw.close()


def test_rows_deleted_at_the_top_of_a_pending_range_are_not_indexed_twice(
    database: Path,
) -> None:
    # The next bulk write reuses their rowids, inside the older range: the ranges merge.
    raw = _connect(database)
    writer = Writer(raw, random.Random(1))
    try:
        writer.bulk("contact", 10)
        for _ in range(4):
            writer.delete_last("contact")
        writer.bulk("contact", 6)
        ranges = raw.execute("SELECT first_rowid, last_rowid FROM search_pending").fetchall()
        assert ranges == [(1, 12)]
        _check(raw)
        writer.catch_up_some(100, ceiling=12)
        _check(raw)
        _integrity(raw)
        assert len(_indexed(raw, "contact")) == 12
    finally:
        raw.close()


def test_an_empty_bulk_write_leaves_nothing_pending(database: Path) -> None:
    raw = _connect(database)
    try:
        Writer(raw, random.Random(2)).bulk("contact", 0)
        assert raw.execute("SELECT count(*) FROM search_pending").fetchone()[0] == 0
    finally:
        raw.close()


def _triggers(raw: sqlite3.Connection) -> dict[str, str]:
    return dict(raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))


@pytest.mark.parametrize("end", ["COMMIT", "ROLLBACK"])
def test_a_bulk_write_sets_the_insert_triggers_aside_inside_its_transaction_only(
    database: Path, end: str
) -> None:
    # defer() drops the table's insert trigger (its per-row check was most of a big
    # import's insert time) and close() puts it back: no other connection ever sees it
    # missing, a rollback restores it, and single inserts afterwards are pending again.
    raw, other = _connect(database), _connect(database)
    try:
        before = _triggers(raw)
        raw.execute("BEGIN IMMEDIATE")
        deferrals = [search_index.defer(raw, table) for table in TABLES]
        inside = _triggers(raw)
        assert set(before) - set(inside) == {"contact_search_insert", "social_search_insert"}
        assert _triggers(other) == before  # another connection still sees them
        writer = Writer(raw, random.Random(7))
        for table in TABLES:
            for _ in range(5):
                writer.insert(table)
        for deferral in deferrals:
            assert deferral is not None
            search_index.close(raw, deferral)
        assert _triggers(raw) == before
        raw.execute(end)
        assert _triggers(other) == _triggers(raw) == before
        for table in TABLES:
            writer.insert(table)  # a single write after it, through its trigger
        _check(raw)
        # The single write extends the bulk write's range, or starts one after a rollback.
        ranges = raw.execute("SELECT first_rowid, last_rowid FROM search_pending").fetchall()
        assert ranges == [(1, 6), (1, 6)] if end == "COMMIT" else [(1, 1), (1, 1)]
        writer.catch_up_some(100)
        writer.catch_up_some(100)
        _check(raw)
        _integrity(raw)
    finally:
        raw.close()
        other.close()


def test_rebuild_clears_what_is_pending(database: Path) -> None:
    _bulk(database, 3, 5)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            assert search_index.pending_ranges(connection)
            search_index.rebuild(connection)
        with engine.connect() as connection:
            assert search_index.pending_ranges(connection) == {}
    finally:
        engine.dispose()
    _verify(database)


def test_the_server_indexes_what_is_left_pending(database: Path, tmp_path: Path) -> None:
    # Rows left pending (an import process that ended after its commit, or a CLI import
    # beside the server) are indexed by the server's background thread.
    import time

    from fastapi.testclient import TestClient

    from kontak.config import Settings
    from kontak.web.app import create_app

    _bulk(database, 4, 7)
    settings = Settings(database_url=f"sqlite:///{database}", data_dir=tmp_path / "data")
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 30
        raw = _connect(database)
        try:
            while raw.execute("SELECT count(*) FROM search_pending").fetchone()[0]:
                assert time.monotonic() < deadline, "nothing indexed the pending rows"
                time.sleep(0.1)
            _check(raw)
            assert len(_indexed(raw, "contact")) == 7
        finally:
            raw.close()


def test_a_writer_gets_in_between_the_batches_of_a_catch_up(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's write lock is not fair: without a pause between batches the catch-up
    # took it straight back, and an import's own "completed" waited for all of it.
    import threading

    _bulk(database, 5, 60)
    engine = make_engine(f"sqlite:///{database}")
    started = threading.Event()
    original = search_index._index_batch

    def batch(raw: sqlite3.Connection, size: int, ceilings: dict[str, int]) -> int:
        started.set()
        return original(raw, size, ceilings)

    monkeypatch.setattr(search_index, "_index_batch", batch)
    try:
        worker = threading.Thread(target=search_index.catch_up, args=(engine,), kwargs={"batch": 1})
        worker.start()
        assert started.wait(10)
        with (
            engine.connect() as connection,
            connection.execution_options(kontak_write=True).begin(),
        ):
            left = connection.exec_driver_sql(
                "SELECT sum(last_rowid - first_rowid + 1) FROM search_pending"
            ).scalar()
        worker.join(60)
    finally:
        engine.dispose()
    assert left is not None
    assert left > 30  # in after a few batches, not after all 60


def test_a_catch_up_leaves_rows_inserted_meanwhile_to_the_next_round(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It chased them: under steady creates each batch indexed the few rows that came in
    # during the last one, an FTS5 segment each, until the 16th made FTS5 merge them whole
    # inside an insert (a create stalled 0.6-2 s at 1M contacts; benchmarks, session 33).
    _bulk(database, 10, 10)
    raw = _connect(database)  # the engine checks foreign keys: the contacts' organization
    raw.execute(
        "INSERT INTO organization (id, slug, name, default_region, created_at)"
        " VALUES ('org', 'org', 'Org', 'ID', '2026-01-01')"
    )
    raw.close()
    engine = make_engine(f"sqlite:///{database}")
    original = search_index._index_batch
    arrivals = Writer(sqlite3.connect(":memory:"), random.Random(11))
    arrivals.n = 1000  # ids apart from the bulk's
    calls: list[int] = []

    def batch(raw: sqlite3.Connection, size: int, ceilings: dict[str, int]) -> int:
        if len(calls) < 50:  # a create comes in before each batch (in its transaction)
            arrivals.raw = raw
            arrivals.insert("contact")
        calls.append(size)
        return original(raw, size, ceilings)

    monkeypatch.setattr(search_index, "_index_batch", batch)
    try:
        assert search_index.catch_up(engine, batch=100) == 10  # 60 when it chased
        assert len(calls) == 2  # the batch, then nothing left up to the ceiling
        with engine.connect() as connection:
            assert search_index.pending_ranges(connection) == {"contact": [(11, 12)]}
        monkeypatch.setattr(search_index, "_index_batch", original)
        assert search_index.catch_up(engine) == 2
    finally:
        engine.dispose()
    assert len(_verify(database)) == 12


def test_a_big_catch_up_leaves_one_segment_per_index(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many batch-sized segments left to FTS5's automerge slowed every later single write.
    _bulk(database, 6, 40)
    monkeypatch.setattr(search_index, "OPTIMIZE_FROM", 20)
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert search_index.catch_up(engine, batch=5) == 40
    finally:
        engine.dispose()
    raw = _connect(database)
    try:
        segments = raw.execute("SELECT count(DISTINCT segid) FROM contact_search_idx").fetchone()
        assert segments == (1,)
        _check(raw)
        _integrity(raw)
    finally:
        raw.close()


def test_single_inserts_wait_in_one_range_for_the_catch_up(database: Path) -> None:
    # Indexed one by one they made FTS5 merge segments every ~15th create (revision 0007).
    raw = _connect(database)
    writer = Writer(raw, random.Random(7))
    try:
        for _ in range(5):
            writer.insert("contact")
        ranges = raw.execute("SELECT name, first_rowid, last_rowid FROM search_pending").fetchall()
        assert ranges == [("contact", 1, 5)]
        assert _indexed(raw, "contact") == set()
        writer.insert("social_account")
        assert raw.execute(
            "SELECT first_rowid, last_rowid FROM search_pending WHERE name = 'social_account'"
        ).fetchall() == [(1, 1)]
    finally:
        raw.close()
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert search_index.catch_up(engine) == 6
        with engine.connect() as connection:
            assert search_index.pending_ranges(connection) == {}
    finally:
        engine.dispose()
    assert len(_verify(database)) == 5


def test_searches_read_pending_rows_only_while_they_are_few(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _connect(database)
    writer = Writer(raw, random.Random(8))
    engine = make_engine(f"sqlite:///{database}")
    try:
        for _ in range(3):
            writer.insert("contact")
        writer.bulk("social_account", 2)
        with engine.connect() as connection:
            expected = {"contact": [(1, 3)], "social_account": [(1, 2)]}
            assert search_index.pending_ranges(connection) == expected
            monkeypatch.setattr(search_index, "FEW_PENDING", 4)  # 5 pending: too many
            assert search_index.pending_ranges(connection) is None
    finally:
        engine.dispose()
        raw.close()


def test_small_catch_ups_merge_the_segments_they_leave(database: Path) -> None:
    # FTS5's automerge is off (it merged in 100+ ms bursts inside whatever write came
    # along); each catch-up asks for a bounded merge instead, so segments do not pile up.
    raw = _connect(database)
    writer = Writer(raw, random.Random(9))
    engine = make_engine(f"sqlite:///{database}")
    try:
        automerge = raw.execute("SELECT v FROM contact_search_config WHERE k = 'automerge'")
        assert automerge.fetchall() == [(0,)]
        for _ in range(15):  # FTS5's crisis merge would merge the 16th
            for _ in range(3):
                writer.insert("contact")
            assert search_index.catch_up(engine) == 3
        segments = raw.execute("SELECT count(DISTINCT segid) FROM contact_search_idx").fetchone()
        assert segments[0] <= 5  # 15 without the merges
        _check(raw)
        _integrity(raw)
    finally:
        engine.dispose()
        raw.close()


def _layout(database: Path, index: str = "contact_search") -> search_index.Layout:
    raw = _connect(database)
    try:
        found = search_index.layout(raw, index)
    finally:
        raw.close()
    assert found is not None
    return found


def _catch_up(database: Path, **options: int) -> int:
    engine = make_engine(f"sqlite:///{database}")
    try:
        return search_index.catch_up(engine, **options)
    finally:
        engine.dispose()


def _no_ballast(database: Path) -> None:
    raw = _connect(database)
    try:
        for index in ("contact_search", "social_search"):
            left = raw.execute(
                f"SELECT rowid FROM {index} WHERE {index} MATCH '\"lla\"' AND rowid < 0"
            ).fetchall()
            assert left == [], index
    finally:
        raw.close()


def test_a_big_catch_up_lays_its_index_on_a_deep_level(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On level 1 (where FTS5 put it) the next rounds' small segments soon joined it, and
    # merging them rewrote all of it, 100 pages a round (benchmarks, session 33).
    monkeypatch.setattr(search_index, "OPTIMIZE_FROM", 20)
    _bulk(database, 12, 400)
    assert _catch_up(database, batch=100) == 400
    layout = _layout(database)
    assert len(layout.segments) == 1
    assert layout.deepest >= search_index.DEEP
    _no_ballast(database)
    assert len(_verify(database)) == 400


def test_small_catch_ups_leave_the_deep_segment_alone(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "OPTIMIZE_FROM", 20)
    _bulk(database, 13, 2000)
    _catch_up(database)
    (big,) = _layout(database).segments
    raw = _connect(database)
    writer = Writer(raw, random.Random(14))
    writer.n = 10_000
    try:
        for _ in range(40):
            for _ in range(3):
                writer.insert("contact")
            assert _catch_up(database) == 3
    finally:
        raw.close()
    layout = _layout(database)
    assert big in layout.segments  # the same segment, unmerged
    assert len(layout.segments) <= 10  # the small ones merged among themselves
    assert len(_verify(database)) == 2120


def test_fts5_counts_two_more_levels_at_every_optimize(tmp_path: Path) -> None:
    # Why MAX_LEVELS: FTS5 3.40 refuses an index of more than 2,000 levels ("database disk
    # image is malformed"), which ~1,000 big catch-ups reached.
    raw = _connect(tmp_path / "fts.db")
    raw.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram', detail=none)")
    raw.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)"
        " INSERT INTO t (rowid, x) SELECT i, 'nama ' || i FROM n"
    )
    levels = []
    for n in range(4):
        raw.execute("INSERT INTO t (rowid, x) VALUES (?, 'baru')", (1000 + n,))
        raw.execute("INSERT INTO t (t) VALUES ('optimize')")
        found = search_index.layout(raw, "t")
        assert found is not None
        levels.append(found.levels)
    raw.close()
    assert [b - a for a, b in itertools.pairwise(levels)] == [2, 2, 2]


def test_the_levels_stay_bounded(database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_index, "OPTIMIZE_FROM", 20)
    monkeypatch.setattr(search_index, "MAX_LEVELS", search_index.DEEP + 8)
    seen = []
    raw = _connect(database)
    writer = Writer(raw, random.Random(20))
    try:
        for _ in range(8):
            writer.bulk("contact", 30)
            assert _catch_up(database) == 30
            layout = _layout(database)
            assert len(layout.segments) == 1
            seen.append(layout.levels)
    finally:
        raw.close()
    assert max(seen) <= search_index.MAX_LEVELS + 2
    assert min(seen) >= search_index.DEEP
    assert seen != sorted(seen)  # laid out afresh at least once
    _no_ballast(database)
    assert len(_verify(database)) == 240


def test_rebuild_lays_the_indexes_out_deep(database: Path) -> None:
    # (An index of a page or two may stay shallow: FTS5 moves such segments around freely,
    # and rewriting them costs nothing.)
    _bulk(database, 30, 400)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            search_index.rebuild(connection)
    finally:
        engine.dispose()
    for index in ("contact_search", "social_search"):
        assert _layout(database, index).deepest in (-1, *range(search_index.DEEP, 100))
    assert _layout(database).deepest >= search_index.DEEP
    _no_ballast(database)
    assert len(_verify(database)) == 400


def test_a_small_index_is_made_to_count_deep_levels_in_one_transaction(
    database: Path,
) -> None:
    assert _layout(database).levels < search_index.DEEP  # a new database's
    engine = make_engine(f"sqlite:///{database}")
    try:
        search_index._write_each_index(engine, search_index._count_deep_if_small)
    finally:
        engine.dispose()
    for index in ("contact_search", "social_search"):
        layout = _layout(database, index)
        assert layout.levels >= search_index.DEEP
        assert layout.segments == ()  # the ballast is out again
    _no_ballast(database)
    raw = _connect(database)
    try:
        _integrity(raw)
    finally:
        raw.close()


def _structure(levels: list[list[tuple[int, int, int]]], v2: bool) -> bytes:
    def varint(n: int) -> bytes:
        assert n < 128
        return bytes([n])

    out = b"\x00\x00\x00\x01" + (b"FLG2" if v2 else b"")
    out += varint(len(levels)) + varint(sum(map(len, levels))) + varint(7)
    out += varint(3) if v2 else b""
    for segments in levels:
        out += varint(0) + varint(len(segments))
        for segment, first, last in segments:
            out += varint(segment) + varint(first) + varint(last)
            out += bytes(5) if v2 else b""
    return out


@pytest.mark.parametrize("v2", [False, True])
def test_layout_reads_both_forms_of_the_record(tmp_path: Path, v2: bool) -> None:
    raw = _connect(tmp_path / "x.db")
    raw.execute("CREATE TABLE i_data (id INTEGER PRIMARY KEY, block BLOB)")
    block = _structure([[], [(4, 1, 3), (5, 4, 4)], [], [(2, 10, 99)]], v2)
    raw.execute("INSERT INTO i_data VALUES (10, ?)", (block,))
    found = search_index.layout(raw, "i")
    assert found == search_index.Layout(4, ((1, 4, 3), (1, 5, 1), (3, 2, 90)))
    assert (found.pages, found.deepest) == (94, 3)
    raw.execute("UPDATE i_data SET block = ?", (block[:-1],))  # cut short: not known
    assert search_index.layout(raw, "i") is None
    raw.close()


def test_an_index_laid_out_already_is_left_as_it_is(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two server processes may both catch up with an import's rows: the second's layout
    # must not rewrite the index the first laid out.
    monkeypatch.setattr(search_index, "OPTIMIZE_FROM", 20)
    _bulk(database, 40, 400)
    _catch_up(database)
    before = _layout(database)
    engine = make_engine(f"sqlite:///{database}")
    try:
        search_index._write_each_index(engine, search_index._lay_out)
    finally:
        engine.dispose()
    assert _layout(database) == before
