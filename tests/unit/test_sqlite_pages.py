"""The page size of the SQLite databases Kontak creates, and databases made before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from kontak.db.migrate import upgrade
from kontak.db.session import PAGE_SIZE, dispose, make_engine


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_database_gets_the_larger_pages_and_keeps_wal(tmp_path: Path) -> None:
    path = tmp_path / "kontak.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        dispose(engine)
    assert page_size(path) == PAGE_SIZE != 4096  # not SQLite's default


def test_a_database_made_with_other_pages_keeps_them_and_works(tmp_path: Path) -> None:
    path = tmp_path / "kontak.db"
    with sqlite3.connect(path) as db:  # as SQLite makes one by default (4 KiB pages)
        db.execute("PRAGMA page_size = 4096")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE before (x INTEGER)")
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO before VALUES (1)"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM before")).scalar() == 1
    finally:
        dispose(engine)
    assert page_size(path) == 4096
