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
