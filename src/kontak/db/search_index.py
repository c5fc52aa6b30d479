"""SQLite search indexes: deferred indexing of bulk writes (revision 0006).

A row is in its FTS5 index (``contact_search``, ``social_search``) if and only if its rowid
lies in no *pending range* of ``search_pending``. The triggers keep that for single writes;
an import calls :func:`defer` before its bulk inserts and :func:`close` after them, in its
transaction, so that its rows skip the triggers (1M contacts: 9.8 s -> 3.0 s); after the
commit :func:`catch_up` indexes them in one statement per batch and shrinks the range, a
transaction per batch so that no writer waits long. While anything is pending, a search
decides by LIKE alone (:func:`has_pending`): slower for a few seconds, never wrong.

PostgreSQL and SQLite builds without FTS5 trigrams have no such table: all of this does
nothing there.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine

from kontak.db.session import WRITE_OPTION

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


def defer(raw: sqlite3.Connection, table: str) -> bool:
    """Inside a write transaction, before inserting many rows into ``table``: the rows
    inserted from now on are left to :func:`catch_up`. Returns False (nothing deferred)
    where there are no search indexes. Call :func:`close` after the inserts."""
    if not _has_table(raw):
        return False
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
    return True


def close(raw: sqlite3.Connection, table: str) -> None:
    """After the inserts that :func:`defer` announced: the range ends at the last row (in
    the same transaction no one else inserted); an empty range is dropped."""
    raw.execute(
        f"UPDATE {PENDING} SET last_rowid = (SELECT coalesce(max(rowid), 0) FROM {table})"
        " WHERE name = ? AND last_rowid = ?",
        (table, OPEN_END),
    )
    raw.execute(f"DELETE FROM {PENDING} WHERE name = ? AND first_rowid > last_rowid", (table,))


def has_pending(connection: Connection) -> bool:
    """Whether some rows are not indexed yet (SQLite with search indexes only)."""
    return bool(connection.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {PENDING})").scalar())


def catch_up(engine: Engine, *, batch: int = BATCH) -> int:
    """Index every pending row, ``batch`` rows per write transaction; returns how many rowids
    were covered. Safe to run from several threads or processes at once: each batch reads
    the ranges inside its own write transaction. PostgreSQL: merges the pending lists of
    the trigram indexes (see :data:`PENDING_LIST`)."""
    if engine.dialect.name == "postgresql":
        return _merge_pending_lists(engine)
    if engine.dialect.name != "sqlite":
        return 0
    started, covered = time.monotonic(), 0
    while True:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            if not _has_table(raw):
                return covered
            with connection.execution_options(**{WRITE_OPTION: True}).begin():
                done = _index_batch(raw, batch)
        if done == 0:
            break
        covered += done
        # Let a waiting writer in: the lock is not fair, and this loop would take it
        # straight back (it kept an import's own "completed" waiting for the whole catch-up).
        time.sleep(PAUSE_S)
    if covered >= OPTIMIZE_FROM:
        _optimize(engine)
    if covered:
        took = time.monotonic() - started
        log.info("search index caught up with %d rows in %.2f s", covered, took)
    return covered


def _optimize(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        for index, _columns in INDEXES.values():
            with connection.execution_options(**{WRITE_OPTION: True}).begin():
                raw.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")  # type: ignore[union-attr]


def _index_batch(raw: Any, batch: int) -> int:
    """Index the first ``batch`` rowids of the first pending range; returns how many rowids
    it covered (0: nothing pending)."""
    found = raw.execute(
        f"SELECT rowid, name, first_rowid, last_rowid FROM {PENDING}"
        " WHERE last_rowid < ? ORDER BY rowid LIMIT 1",
        (OPEN_END,),
    ).fetchone()
    if found is None:
        return 0
    key, table, first, last = found
    index, columns = INDEXES[table]
    end = min(last, first + batch - 1)
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
    for index, _columns in INDEXES.values():
        raw.execute(f"INSERT INTO {index} ({index}) VALUES ('rebuild')")  # type: ignore[union-attr]
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
