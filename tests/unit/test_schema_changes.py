"""A connection keeps working when another one changed the schema (SQLite).

An import sets the search insert triggers aside inside its transaction
(``search_index.defer``), which changes the schema. SQLite 3.40 then failed the first
DELETE of any other connection that had read the schema before, with "no such table:
contact" (re-preparing a DELETE with foreign-key actions); the retry worked. Whatever
came first in a transaction of the server after an import by another process could be
that DELETE: a contact's deletion answered 500.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from kontak.db import search_index
from kontak.db.migrate import upgrade
from kontak.db.session import dispose, make_engine, make_sessionmaker, session_scope


def _set_triggers_aside_and_back(path: Path) -> None:
    """What an import's transaction does to the schema, from another connection."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        deferrals = [search_index.defer(raw, t) for t in ("contact", "social_account")]
        for deferral in deferrals:
            assert deferral is not None
            search_index.close(raw, deferral)
        raw.execute("COMMIT")
    finally:
        raw.close()


def test_a_delete_first_in_a_transaction_after_another_connection_changed_the_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kontak.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_sessionmaker(engine)
    try:
        for write in (True, False):
            with session_scope(sessions, write=write) as session:  # reads the schema
                assert session.execute(text("SELECT count(*) FROM contact")).scalar() == 0
            _set_triggers_aside_and_back(path)
            with session_scope(sessions, write=write) as session:
                deleted = session.execute(text("DELETE FROM contact WHERE id = 'none'"))
                assert deleted.rowcount == 0  # type: ignore[attr-defined]
            with engine.begin() as connection:  # a plain transaction too (no session)
                connection.execute(text("SELECT 1 FROM contact LIMIT 1"))
            _set_triggers_aside_and_back(path)
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM social_account WHERE id = 'none'"))
    finally:
        dispose(engine)
