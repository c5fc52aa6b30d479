"""``kontak token``: API tokens."""

from __future__ import annotations

import typer

from kontak.account import service
from kontak.cli.context import out, transaction

app = typer.Typer(help="API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="The user the token acts as."),
    name: str = typer.Option("cli", "--name", help="A label to recognise the token by."),
) -> None:
    """Create an API token and print it alone on stdout (it is not shown again)."""
    with transaction() as session:
        user = service.get_user_by_email(session, email)
        _, raw = service.create_token(session, user, name=name)
    out(raw)
