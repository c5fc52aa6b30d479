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
    with context.begin_transaction():
        context.run_migrations()


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
