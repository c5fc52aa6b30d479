"""Alembic environment: runs with the connection or URL that ``kontak.db.migrate`` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kontak.db import models  # noqa: F401  (registers every table)
from kontak.db.base import Base, include_name
from kontak.db.session import dispose, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A migration that rebuilds a table (SQLite cannot change its constraints in place)
        # drops the old one: with foreign keys on, that would delete the rows pointing at
        # it. The pragma only changes outside a transaction, so it is set before ours
        # begins; foreign_key_check stands in for it before the commit.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migrations left rows pointing at nothing: {broken[:5]}")
    finally:
        if sqlite:
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        dispose(engine)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `kontak db upgrade`")
run_migrations_online()
