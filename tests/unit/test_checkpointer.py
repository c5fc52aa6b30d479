"""The server's SQLite engine leaves WAL checkpoints to a thread of their own: commits
never copy the WAL into the database file, the checkpointer does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from kontak.db.session import Checkpointer, make_engine


def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    checkpointer = Checkpointer(engine, every_s=3600)  # rounds by hand below
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
        for _ in range(20):  # well past the 1,000 pages at which a commit would copy
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                        " WHERE i < 400) INSERT INTO t SELECT hex(randomblob(500)) FROM n"
                    )
                )
        busy, frames, copied = checkpointer.checkpoint()
        assert busy == 0
        assert frames > 1000  # nothing was copied by the commits
        assert copied == frames  # the checkpointer copied everything
        checkpointer.start()
        checkpointer.stop()  # stops, with a last round
    finally:
        engine.dispose()
    plain = make_engine(f"sqlite:///{path}")
    try:
        with plain.connect() as conn:
            auto = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
        assert auto == 1000  # other engines (the CLI) keep SQLite's own checkpoints
    finally:
        plain.dispose()
