"""``kontak db``: schema migrations."""

from __future__ import annotations

import typer

from kontak.cli.context import err
from kontak.config import get_settings
from kontak.db.migrate import upgrade as migrate_upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending migrations to the configured database."""
    settings = get_settings()
    migrate_upgrade(settings.resolved_database_url)
    err.print("Database is up to date.")


@app.command("rebuild-search")
def rebuild_search() -> None:
    """Rebuild the search indexes from the contacts: SQLite's after a VACUUM (which may
    renumber the rows they point at); PostgreSQL's trigram table whenever searches seem to
    miss contacts."""
    from kontak.db import search_index
    from kontak.db.session import WRITE_OPTION, dispose, make_engine, writer_of

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                count = search_index.rebuild_trigrams(conn)
            if count < 0:
                err.print("Nothing to rebuild: this database has no pg_trgm search indexes.")
                return
            search_index.catch_up(engine)  # merges the indexes' pending lists
            err.print(f"Search indexes rebuilt ({count:,} contacts).")
            return
        # SQLite: as a writer (BEGIN IMMEDIATE, the write turn first). In a plain BEGIN the
        # rebuild reads before it writes, and a server's commit in between (its indexer
        # runs every second) failed it at once with "database is locked".
        with (
            writer_of(engine).connect() as conn,
            conn.execution_options(**{WRITE_OPTION: True}).begin(),
        ):
            search_index.rebuild(conn)
    finally:
        dispose(engine)
    err.print("Search indexes rebuilt.")
