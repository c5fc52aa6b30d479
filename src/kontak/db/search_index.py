"""SQLite search indexes: rows are indexed in batches, after their commit (revisions 0006
and 0007).

A row is in its FTS5 index (``contact_search``, ``social_search``) if and only if its rowid
lies in no *pending range* of ``search_pending``. A single insert adds its row to a pending
range (the insert triggers of revision 0007: indexing rows one by one cost ~2.4 ms a create
at a million contacts, in FTS5 merges); an import calls :func:`defer` before its bulk
inserts and :func:`close` after them, in its transaction (1M contacts: 9.8 s -> 3.0 s).
:func:`catch_up` indexes pending rows in one statement per batch and shrinks the ranges, a
transaction per batch so that no writer waits long; the server runs it every second, an
import right after its commit. Updates and deletes of indexed rows change the index at once.

A catch-up of many rows ends with FTS5's 'optimize' on a deep level of the index, where
the small segments of later rounds do not reach it (see "Where the segments lie").

Searches read the pending rows directly while they are few (:func:`pending_ranges`: the
rows a second of creates leaves), and decide by LIKE alone while an import's rows wait:
slower for a few seconds, never wrong.

SQLite builds without FTS5 trigrams have no such table: all of this does nothing there.

PostgreSQL (migration 0008) has its own, simpler form of the same idea: a trigger keeps the
``contact_trigram`` table in step with single writes, an import leaves its contacts out
(:func:`defer_trigrams`) and records their id range (:func:`record_trigram_range`), and
:func:`catch_up` copies the range's contacts in after the commit; searches check the
contacts of pending ranges with LIKE meanwhile (``contact.repository._few_matches``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from kontak.db.session import WRITE_OPTION, writer_of

log = logging.getLogger(__name__)

PENDING = "search_pending"
# What each indexed table feeds its index with.
INDEXES = {
    "contact": ("contact_search", ("name", "email_key", "phone")),
    "social_account": ("social_search", ("handle_key",)),
}
OPEN_END = 2**62  # the end of a range while its transaction is still inserting
BATCH = 100_000  # rows indexed per transaction: ~0.5 s of holding the write lock
PAUSE_S = 0.02  # between batches
# After a catch-up of this many rows the indexes are merged into one segment each: big
# segments left to FTS5's automerge made every later single write pay for merging them
# (200k contacts: creates p99 34 -> 18 ms, worst 126 -> 19 ms).
OPTIMIZE_FROM = 10_000
# FTS5's automatic merging is off (revision 0007): it merged in bursts of 100+ ms inside
# whatever write came along. Each catch-up asks instead for this many pages of merging
# (levels of 4 segments or more only; at a million contacts 8-20 ms every few rounds).
MERGE_PAGES = 100
# How deep a big catch-up lays its index (see "Where the segments lie" below), and how
# many levels FTS5 may count before the index is laid out afresh.
DEEP = 12
MAX_LEVELS = 1000
# An index this small (pages of ~4 KB) is made to count DEEP levels before a big
# catch-up (_count_deep_if_small); a bigger one that counts fewer is laid out afresh.
SMALL_PAGES = 250
# Searches read pending rows directly up to this many (else LIKE alone decides).
FEW_PENDING = 5000
# PostgreSQL: an import's COPYs add their rows to the GIN pending lists of the trigram
# indexes only (up to this much), and catch_up merges the lists after the commit. Until
# then a search reads the pending list too (slower, still exact); an insert by another
# session meanwhile may merge the list itself (one slow create).
PENDING_LIST = "2GB"


def _has_table(raw: Any) -> bool:
    return bool(
        raw.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (PENDING,)
        ).fetchone()
    )


@dataclass(frozen=True, slots=True)
class Deferral:
    """What :func:`defer` did to ``table``, for :func:`close` to finish."""

    table: str
    trigger: str | None  # the SQL of the insert trigger set aside, to put back


def defer(raw: sqlite3.Connection, table: str) -> Deferral | None:
    """Inside a write transaction, before inserting many rows into ``table``: the rows
    inserted from now on are left to :func:`catch_up`. Returns None (nothing deferred)
    where there are no search indexes. Call :func:`close` after the inserts, in the same
    transaction.

    The table's insert trigger is dropped until :func:`close` puts it back: every row of
    the open range would make it check the range and do nothing, and that check alone
    cost 3.6 s of a million-contact import's 6.3 s of inserts. A transaction sees its own
    schema change and no one else does before the commit (by then the trigger is back);
    a rollback restores it."""
    if not _has_table(raw):
        return None
    (first,) = raw.execute(f"SELECT coalesce(max(rowid), 0) + 1 FROM {table}").fetchone()
    # New rows take rowids above the largest; after deletes at the top that may be inside
    # an older pending range: merged with it, so that ranges never overlap (no row is ever
    # indexed twice).
    (low,) = raw.execute(
        f"SELECT min(first_rowid) FROM {PENDING} WHERE name = ? AND last_rowid >= ?",
        (table, first - 1),
    ).fetchone()
    raw.execute(f"DELETE FROM {PENDING} WHERE name = ? AND last_rowid >= ?", (table, first - 1))
    start = first if low is None else min(first, low)
    raw.execute(f"INSERT INTO {PENDING} VALUES (?, ?, ?)", (table, start, OPEN_END))
    trigger = f"{INDEXES[table][0]}_insert"
    found = raw.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ? AND tbl_name = ?",
        (trigger, table),
    ).fetchone()
    if found is not None:
        raw.execute(f"DROP TRIGGER {trigger}")
    return Deferral(table, None if found is None else str(found[0]))


def close(raw: sqlite3.Connection, deferral: Deferral) -> None:
    """After the inserts that :func:`defer` announced: the range ends at the last row (in
    the same transaction no one else inserted); an empty range is dropped; the insert
    trigger is back."""
    table = deferral.table
    raw.execute(
        f"UPDATE {PENDING} SET last_rowid = (SELECT coalesce(max(rowid), 0) FROM {table})"
        " WHERE name = ? AND last_rowid = ?",
        (table, OPEN_END),
    )
    raw.execute(f"DELETE FROM {PENDING} WHERE name = ? AND first_rowid > last_rowid", (table,))
    if deferral.trigger is not None:
        raw.execute(deferral.trigger)


def catch_up(engine: Engine, *, batch: int = BATCH) -> int:
    """Index every pending row, ``batch`` rows per write transaction; returns how many rowids
    were covered. Safe to run from several threads or processes at once: each batch reads
    the ranges inside its own write transaction. PostgreSQL: indexes the contacts of the
    pending ranges of ``contact_trigram_pending`` (migration 0008), then merges the
    pending lists of the trigram indexes (see :data:`PENDING_LIST`)."""
    if engine.dialect.name == "postgresql":
        covered = _index_trigram_ranges(engine, batch)
        merged = _merge_pending_lists(engine)
        return covered or merged
    if engine.dialect.name != "sqlite":
        return 0
    # Through the writer's connection: a write through any other would throw away the page
    # cache the server's creates keep warm there (kontak.db.session.make_engine).
    engine = writer_of(engine)
    started, covered = time.monotonic(), 0
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        if not _has_table(raw):
            return 0
        # Rows inserted from now on wait for the next round. Chasing them, a round under
        # steady creates went on for seconds, a batch of a few rows (an FTS5 segment) after
        # another, with no merge in between; at 16 segments on a level FTS5 merges the level
        # whole inside the insert that makes the 16th, and the next level too when that
        # fills it, finishing whatever merge it was in: a million contacts' segment, the
        # create waiting behind it stalled 0.6-2 s (docs/benchmarks.md, session 33).
        ceilings = _ceilings(raw)
        big = _pending_up_to(raw, ceilings) >= OPTIMIZE_FROM
    if big:
        _write_each_index(engine, _count_deep_if_small)
    while ceilings:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            with connection.execution_options(**{WRITE_OPTION: True}).begin():
                done = _index_batch(raw, batch, ceilings)
        if done == 0:
            break
        covered += done
        # Let a waiting writer in: the lock is not fair, and this loop would take it
        # straight back (it kept an import's own "completed" waiting for the whole catch-up).
        time.sleep(PAUSE_S)
    if big or covered >= OPTIMIZE_FROM:
        _write_each_index(engine, _lay_out)
    else:
        _write_each_index(engine, _merge)
    if covered:
        took = time.monotonic() - started
        log.info("search index caught up with %d rows in %.2f s", covered, took)
    return covered


def _pending_up_to(raw: Any, ceilings: dict[str, int]) -> int:
    """How many rowids are pending up to each table's ceiling."""
    total = 0
    for table, ceiling in ceilings.items():
        (count,) = raw.execute(
            f"SELECT coalesce(sum(min(last_rowid, ?) - first_rowid + 1), 0) FROM {PENDING}"
            " WHERE name = ? AND first_rowid <= ?",
            (ceiling, table, ceiling),
        ).fetchone()
        total += int(count)
    return total


def _ceilings(raw: Any) -> dict[str, int]:
    """The last pending rowid of each table (imports still inserting left out)."""
    found = raw.execute(
        f"SELECT name, max(last_rowid) FROM {PENDING} WHERE last_rowid < ? GROUP BY name",
        (OPEN_END,),
    )
    return {str(name): int(last) for name, last in found}


def pending_ranges(connection: Connection) -> dict[str, list[tuple[int, int]]] | None:
    """The pending ranges of each table while they hold at most :data:`FEW_PENDING` rowids
    and no import is inserting ({} when nothing is pending); None otherwise."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    total = 0
    for name, first, last in connection.exec_driver_sql(
        f"SELECT name, first_rowid, last_rowid FROM {PENDING} ORDER BY name, first_rowid"
    ):
        total += int(last) - int(first) + 1
        if last == OPEN_END or total > FEW_PENDING:
            return None
        ranges.setdefault(str(name), []).append((int(first), int(last)))
    return ranges


# Where the segments lie. FTS5 keeps an index as segments on levels: each write of new
# entries makes a segment on level 0, and a merge of a level's segments makes one on the
# next level. A catch-up's 'merge' step (MERGE_PAGES) merges the level with the most
# segments, four at least. 'optimize' merges every segment into one: where they lie on
# several levels, on level L + 1 of an index that counted L levels (FTS5 3.40 counts
# L + 2 afterwards, more with every optimize); where all lie on one level, on the next.
# A new segment on level 0 pulls every smaller segment of the levels above it down to 0
# (up to the first bigger one, or a level in the middle of a merge).
#
# After a big catch-up the index is one segment holding nearly every row. On a low level
# the small segments of the next rounds' creates soon joined it, and merging them rewrote
# all of it, 100 pages a round: with a million contacts 100-200 ms of holding the write
# turn in each of ~100 rounds after the server's start, again on every next level (creates'
# p99 at 1 / 8 / 32 connections 77-84 / 110-115 / 178-230 ms against 38-41 / 49-56 /
# 119-140 ms laid deep; docs/benchmarks.md, session 33).
# So a big catch-up counts at least DEEP levels before its optimize (a small index is made
# to count them first, see _count_deep), and its segments lie on two levels or more, so
# that the optimize lays the index on level DEEP or below, where the small segments of
# later rounds would arrive after some 4^DEEP rounds. And since FTS5 3.40 refuses an index
# of more than 2,000 levels ("database disk image is malformed", after ~1,000 optimizes),
# past MAX_LEVELS the index is laid out afresh. A SQLite whose FTS5 keeps its levels in a
# form not known here keeps FTS5's own placement.
_STRUCTURE_ID = 10  # the row of <index>_data that holds FTS5's record of the segments
_V2 = b"FLG2"  # FTS5 3.44+: the record holds five more numbers per segment
# Ballast: rows of no table (negative rowids: no table has those) put in an index and
# taken out again within a catch-up, to make FTS5 count levels or to give a merge a
# second level. The same text in every column of every index, made from the row's i.
_BALLAST_ROWS = 256  # rowids -1 to -256: enough text for a segment of a few pages
_ONE_ROW = 1_000_000  # rowids -1,000,000 - k: one-row segments
_BALLAST_TEXT = "printf('kontak ballast %05d %05d %05d', i, i * 7919 % 99991, i * 104729 % 99989)"
_BALLAST_GRAM = '"lla"'  # a trigram of its text: with a rowid, a lookup in one doclist


@dataclass(frozen=True, slots=True)
class Layout:
    """FTS5's record of an index's segments."""

    levels: int  # how many levels FTS5 counts
    segments: tuple[tuple[int, int, int], ...]  # (level, id, pages) of each

    @property
    def pages(self) -> int:
        return sum(pages for _level, _id, pages in self.segments)

    @property
    def deepest(self) -> int:
        return max((level for level, _id, _pages in self.segments), default=-1)

    @property
    def on_levels(self) -> int:
        """On how many levels the segments lie."""
        return len({level for level, _id, _pages in self.segments})


def layout(raw: Any, index: str) -> Layout | None:
    """The segments of ``index`` as FTS5 records them (its structure record), or None where
    it is missing or in a form not known here."""
    row = raw.execute(f"SELECT block FROM {index}_data WHERE id = ?", (_STRUCTURE_ID,)).fetchone()
    if row is None or not isinstance(row[0], bytes):
        return None
    data, at = row[0], 4  # after the cookie
    v2 = data[at : at + 4] == _V2
    at += 4 if v2 else 0
    try:
        levels, at = _varint(data, at)
        count, at = _varint(data, at)
        for _ in range(2 if v2 else 1):  # the write counter (and the origin counter)
            _value, at = _varint(data, at)
        segments = []
        for level in range(levels):
            _merging, at = _varint(data, at)
            on_level, at = _varint(data, at)
            for _ in range(on_level):
                segment, at = _varint(data, at)
                first, at = _varint(data, at)
                last, at = _varint(data, at)
                for _ in range(5 if v2 else 0):
                    _value, at = _varint(data, at)
                segments.append((level, segment, last - first + 1))
    except IndexError:
        return None
    if at != len(data) or count != len(segments):
        return None
    return Layout(levels, tuple(segments))


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at ``at``: (value, the offset after it)."""
    value = 0
    for n in range(9):
        byte = data[at + n]
        if n == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + n + 1
    raise AssertionError("unreachable")


def _count_deep_if_small(raw: Any, table: str, index: str) -> None:
    """Before a big catch-up, in a write transaction: a small index that counts fewer than
    DEEP levels (any index of a new database) is made to count them (cheap while it is
    small). A big one is laid out afresh at the catch-up's end instead."""
    found = layout(raw, index)
    if found is not None and found.levels < DEEP and found.pages <= SMALL_PAGES:
        _count_deep(raw, table, index)


def _count_deep(raw: Any, table: str, index: str) -> None:
    """Make FTS5 count at least DEEP levels in ``index``, which must be small: ballast
    added, then optimized with a one-row segment on another level, each time two levels
    more, and taken out again (the levels stay counted; what the index held ends as one
    segment). Stops early where FTS5 does not count them so."""
    _ballast(raw, table, index, add=True)
    for k in range(DEEP):
        found = layout(raw, index)
        if found is None or found.levels >= DEEP:
            break
        _one_row(raw, table, index, k, add=True)
        raw.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")
    _take_out_ballast(raw, table, index)
    # The ballast's entries and their deletions merged away (with what the index held).
    raw.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")


def _lay_out(raw: Any, table: str, index: str) -> None:
    """After a big catch-up, in a write transaction: the index merged into one segment on
    level DEEP or below (see "Where the segments lie")."""
    found = layout(raw, index)
    if found is not None and (
        found.levels > MAX_LEVELS or (found.levels < DEEP and found.pages > SMALL_PAGES)
    ):
        _relay(raw, table, index)
        return
    _optimize_deep(raw, table, index)


def _optimize_deep(raw: Any, table: str, index: str) -> None:
    """FTS5's optimize, with the index's segments on two levels or more first: all on one
    level, FTS5 would merge them into the next level, not below the levels it counts (and
    leave a lone segment where it is). So a one-row segment is added beside them, a merge
    of one page starts merging their level into the next, and the row's deletion makes a
    segment outside that merge, which keeps FTS5 from merely finishing it."""
    found = layout(raw, index)
    if found is not None and len(found.segments) == 1 and found.deepest >= DEEP:
        return  # laid out already (by another process's catch-up of the same rows)
    if found is not None and found.on_levels == 1:
        _one_row(raw, table, index, DEEP, add=True)
        raw.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('merge', -1)")
        _one_row(raw, table, index, DEEP, add=False)
    raw.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")


def _relay(raw: Any, table: str, index: str) -> None:
    """In a write transaction: ``index`` emptied, made to count DEEP levels, given every
    row of ``table`` and merged into one segment below them; nothing of ``table`` is left
    pending."""
    raw.execute(f"INSERT INTO {index} ({index}) VALUES ('delete-all')")
    _count_deep(raw, table, index)
    names = ", ".join(INDEXES[table][1])
    raw.execute(f"INSERT INTO {index} (rowid, {names}) SELECT rowid, {names} FROM {table}")
    _optimize_deep(raw, table, index)
    if _has_table(raw):
        raw.execute(f"DELETE FROM {PENDING} WHERE name = ?", (table,))


def _ballast(raw: Any, table: str, index: str, *, add: bool) -> None:
    """The ballast rows added to ``index`` in one statement, or taken out."""
    _ballast_rows(raw, table, index, "-i", _BALLAST_ROWS, add=add)


def _one_row(raw: Any, table: str, index: str, k: int, *, add: bool) -> None:
    """Ballast row -_ONE_ROW - k added to ``index`` (a one-row segment), or taken out."""
    _ballast_rows(raw, table, index, str(-_ONE_ROW - k), 1, add=add)


def _ballast_rows(raw: Any, table: str, index: str, rowid: str, count: int, *, add: bool) -> None:
    """Rows i = 1 to ``count`` of rowid ``rowid`` (an SQL expression of i) added to
    ``index`` in one statement, or taken out."""
    names = ", ".join(INDEXES[table][1])
    text = ", ".join(_BALLAST_TEXT for _ in INDEXES[table][1])
    into, command = ("", "") if add else (f"{index}, ", "'delete', ")
    raw.execute(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
        f" INSERT INTO {index} ({into}rowid, {names}) SELECT {command}{rowid}, {text} FROM n"
    )


def _take_out_ballast(raw: Any, table: str, index: str) -> None:
    """Every ballast row ``index`` holds taken out. An FTS5 'delete' of entries an index
    does not hold would corrupt it: each is looked for first. (Ballast never outlives the
    transaction that added it.)"""
    if _holds(raw, index, -1):  # the ballast rows come and go together
        _ballast(raw, table, index, add=False)
    for k in range(DEEP + 1):
        if _holds(raw, index, -_ONE_ROW - k):
            _one_row(raw, table, index, k, add=False)


def _holds(raw: Any, index: str, rowid: int) -> bool:
    return bool(
        raw.execute(
            f"SELECT 1 FROM {index} WHERE {index} MATCH '{_BALLAST_GRAM}' AND rowid = ?",
            (rowid,),
        ).fetchone()
    )


# The planner's figures (ANALYZE) for FTS5's own tables: taken when an index was nearly
# empty (the statistics after a big import are refreshed before its catch-up), they say
# `<index>_data` holds a couple of rows, and SQLite then plans FTS5's delete of a merged
# segment's pages (`DELETE FROM <index>_data WHERE id>=? AND id<=?`) as a scan of the whole
# table: at a million contacts every merge step read all ~11,000 pages of the index
# (~170 MB through a 64 MiB cache), 26-65 ms holding the write turn, where seeking the
# range takes 1-4 ms (docs/benchmarks.md, session 34). Without figures SQLite assumes a
# big table and seeks; FTS5's statements need no others.
_SHADOW_PARTS = ("data", "idx", "config", "docsize", "content")


def forget_planner_figures(raw: Any) -> None:
    """In the caller's transaction: drop ANALYZE's figures for the indexes' own tables
    (see above). Run it in ANALYZE's own transaction: ANALYZE makes every connection read
    the figures again after the commit, this deletion alone would not."""
    tables = [f"{index}_{part}" for index, _columns in INDEXES.values() for part in _SHADOW_PARTS]
    marks = ", ".join("?" * len(tables))
    for figures in ("sqlite_stat1", "sqlite_stat4"):
        if raw.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (figures,)
        ).fetchone():
            raw.execute(f"DELETE FROM {figures} WHERE tbl IN ({marks})", tables)


def _merge(raw: Any, _table: str, index: str) -> None:
    """A bounded step of merging the index's segments (see :data:`MERGE_PAGES`)."""
    raw.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('merge', ?)", (MERGE_PAGES,))


def _write_each_index(engine: Engine, step: Callable[[Any, str, str], object]) -> None:
    """``step(raw, table, index)`` for each index, a write transaction each."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        for table, (index, _columns) in INDEXES.items():
            with connection.execution_options(**{WRITE_OPTION: True}).begin():
                step(raw, table, index)


def _index_batch(raw: Any, batch: int, ceilings: dict[str, int]) -> int:
    """Index the first ``batch`` rowids of the first pending range, up to its table's rowid
    in ``ceilings``; returns how many rowids it covered (0: nothing pending up to them)."""
    for table, ceiling in ceilings.items():
        found = raw.execute(
            f"SELECT rowid, first_rowid, last_rowid FROM {PENDING}"
            " WHERE name = ? AND first_rowid <= ? AND last_rowid < ? ORDER BY rowid LIMIT 1",
            (table, ceiling, OPEN_END),
        ).fetchone()
        if found is not None:
            break
    else:
        return 0
    key, first, last = found
    index, columns = INDEXES[table]
    end = min(last, ceiling, first + batch - 1)
    names = ", ".join(columns)
    raw.execute(
        f"INSERT INTO {index} (rowid, {names}) SELECT rowid, {names} FROM {table}"
        " WHERE rowid BETWEEN ? AND ?",
        (first, end),
    )
    if end == last:
        raw.execute(f"DELETE FROM {PENDING} WHERE rowid = ?", (key,))
    else:
        raw.execute(f"UPDATE {PENDING} SET first_rowid = ? WHERE rowid = ?", (end + 1, key))
    return int(end - first + 1)


def rebuild(connection: Connection) -> None:
    """Rebuild both indexes from their tables (after a VACUUM, which may renumber rows);
    nothing is pending afterwards. Inside the caller's transaction."""
    raw = connection.connection.dbapi_connection
    for table, (index, _columns) in INDEXES.items():
        _relay(raw, table, index)
    if _has_table(raw):
        raw.execute(f"DELETE FROM {PENDING}")  # type: ignore[union-attr]


def _merge_pending_lists(engine: Engine) -> int:
    """PostgreSQL: merge the trigram indexes' pending lists into the indexes; returns how
    many pages were merged (nothing where migration 0005 made no index)."""
    from kontak.db.base import TRIGRAM_INDEXES

    merged, started = 0, time.monotonic()
    with engine.connect() as connection:
        present = {
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%(names)s)",
                {"names": list(TRIGRAM_INDEXES)},
            )
        }
        for name in TRIGRAM_INDEXES:
            if name in present:
                merged += int(
                    connection.exec_driver_sql(
                        "SELECT gin_clean_pending_list(%(index)s::regclass)", {"index": name}
                    ).scalar_one()
                )
                connection.commit()
    if merged:
        took = time.monotonic() - started
        log.info("search indexes merged %d pending pages in %.2f s", merged, took)
    return merged


# PostgreSQL (migration 0008): the contacts of an import wait in a range of their ids.
TRIGRAM_PENDING = "contact_trigram_pending"
DEFER_SETTING = "kontak.defer_search"
# Contacts (those ``where`` picks) into the trigram table. ON CONFLICT: a contact created or
# edited meanwhile has put its own row in already, through the trigger.
_FILL_TRIGRAMS = (
    "INSERT INTO contact_trigram (contact_id, organization_id, name, email_key, phone)"
    " SELECT id, organization_id, name, email_key, phone FROM contact {where}"
    " ON CONFLICT DO NOTHING"
)


def has_trigram_table(raw: Any) -> bool:
    """PostgreSQL: whether migration 0008 made the trigram table (pg_trgm is there)."""
    found = raw.execute(f"SELECT to_regclass('{TRIGRAM_PENDING}') IS NOT NULL").fetchone()
    return bool(found and found[0])


def defer_trigrams(raw: Any, on: bool) -> None:
    """PostgreSQL, inside an import's transaction: with ``on``, contacts written from now on
    are left out of the trigram table (its trigger does nothing); call again with False
    after the import's COPYs and :func:`record_trigram_range`."""
    raw.execute(f"SELECT set_config('{DEFER_SETTING}', %s, true)", ("on" if on else "off",))


def record_trigram_range(raw: Any, first_id: str, last_id: str) -> None:
    """PostgreSQL, in the import's transaction: its contacts, ids ``first_id`` to
    ``last_id``, are for :func:`catch_up` to index. Contacts created meanwhile by others
    may fall in the range: they are in the table already and stay as they are."""
    raw.execute(
        f"INSERT INTO {TRIGRAM_PENDING} (first_id, last_id) VALUES (%s, %s)", (first_id, last_id)
    )


def trigram_ranges(connection: Connection) -> list[tuple[str, str]]:
    """PostgreSQL: the id ranges of contacts not in the trigram table yet."""
    return [
        (str(a), str(b))
        for a, b in connection.exec_driver_sql(
            f"SELECT first_id, last_id FROM {TRIGRAM_PENDING} ORDER BY first_id"
        )
    ]


def _index_trigram_ranges(engine: Engine, batch: int) -> int:
    """PostgreSQL: put the contacts of the pending ranges into the trigram table, ``batch``
    of them per transaction; returns how many were added."""
    started, added, batch = time.monotonic(), 0, max(batch, 2)
    while True:
        with engine.begin() as connection:
            raw = connection.connection.dbapi_connection
            if not has_trigram_table(raw):
                return 0
            # SKIP LOCKED: another process indexing the same range goes on alone.
            found = connection.exec_driver_sql(
                f"SELECT id, first_id, last_id FROM {TRIGRAM_PENDING} ORDER BY id"
                " LIMIT 1 FOR UPDATE SKIP LOCKED"
            ).first()
            if found is None:
                break
            key, first, last = found
            span = {"key": key, "first": first, "last": last, "batch": batch}
            bound, count = connection.exec_driver_sql(
                "SELECT max(id), count(*) FROM (SELECT id FROM contact WHERE id >= %(first)s"
                " AND id <= %(last)s ORDER BY id LIMIT %(batch)s) b",
                span,
            ).one()
            if count:
                connection.exec_driver_sql(f"SET LOCAL gin_pending_list_limit = '{PENDING_LIST}'")
                added += connection.exec_driver_sql(
                    _FILL_TRIGRAMS.format(where="WHERE id >= %(first)s AND id <= %(bound)s"),
                    {**span, "bound": bound},
                ).rowcount
            if count < batch:  # nothing of the range is left past this batch
                connection.exec_driver_sql(
                    f"DELETE FROM {TRIGRAM_PENDING} WHERE id = %(key)s", span
                )
            else:  # the next batch starts at this one's last id (inserted again: no-op)
                connection.exec_driver_sql(
                    f"UPDATE {TRIGRAM_PENDING} SET first_id = %(bound)s WHERE id = %(key)s",
                    {**span, "bound": bound},
                )
        time.sleep(PAUSE_S)
    if added:
        took = time.monotonic() - started
        log.info("search trigrams caught up with %d contacts in %.2f s", added, took)
    return added


def rebuild_trigrams(connection: Connection) -> int:
    """PostgreSQL: the trigram table filled afresh from the contacts, nothing pending
    afterwards; inside the caller's transaction (readers see the old table until its
    commit). Returns how many contacts, or -1 where migration 0008 made no table."""
    raw = connection.connection.dbapi_connection
    if not has_trigram_table(raw):
        return -1
    connection.exec_driver_sql("DELETE FROM contact_trigram")
    connection.exec_driver_sql(f"DELETE FROM {TRIGRAM_PENDING}")
    connection.exec_driver_sql(f"SET LOCAL gin_pending_list_limit = '{PENDING_LIST}'")
    return int(connection.exec_driver_sql(_FILL_TRIGRAMS.format(where="")).rowcount)
