"""The ``kontak`` Typer application."""

from __future__ import annotations

import typer

from kontak.cli import db, demo, imports, token, user
from kontak.cli.context import err
from kontak.config import get_settings

app = typer.Typer(
    name="kontak",
    help="Kontak: contacts for customer-service teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(user.app, name="user")
app.add_typer(token.app, name="token")
demo.register(app)
imports.register(app)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Apply pending migrations, then serve the API and the web UI."""
    import uvicorn

    from kontak.db.migrate import upgrade
    from kontak.web.app import create_app

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    err.print(f"Kontak on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
