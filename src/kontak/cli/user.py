"""``kontak user``: people who sign in."""

from __future__ import annotations

import typer

from kontak.account import service
from kontak.account.roles import Role
from kontak.cli.context import err, out, transaction
from kontak.config import get_settings

app = typer.Typer(help="Users of an organization.", no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="The user's email; they sign in with it."),
    org: str = typer.Option(..., "--org", help="Organization slug; created if new."),
    role: Role = typer.Option(..., "--role", help="admin, supervisor or agent."),
    password: str | None = typer.Option(None, "--password", help="Default: generated."),
    name: str | None = typer.Option(None, "--name", help="Display name."),
) -> None:
    """Create a user, and the organization if it is new. A generated password is printed."""
    settings = get_settings()
    with transaction(settings) as session:
        user, generated = service.create_user(
            session,
            email=email,
            org_slug=org,
            role=role.value,
            password=password,
            name=name,
            region=settings.default_region,
        )
    err.print(f"Created {user.role} {user.email} in organization '{org}'.")
    if generated:
        out(f"password: {generated}")
