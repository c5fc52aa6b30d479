"""``kontak demo``: the demo organization and admin that ``make run`` prints."""

from __future__ import annotations

import typer

from kontak.account import repository as account_repository
from kontak.account import service
from kontak.account.secrets import generate_password
from kontak.cli.context import err, transaction
from kontak.config import get_settings

DEMO_ORG = "demo"
DEMO_EMAIL = "admin@demo.kontak.id"


def ensure_demo() -> None:
    """Create (or reset the password of) the demo admin, then print how to sign in."""
    settings = get_settings()
    password = generate_password()
    with transaction(settings) as session:
        user = account_repository.get_user_by_email(session, DEMO_EMAIL)
        if user is None:
            service.create_user(
                session,
                email=DEMO_EMAIL,
                org_slug=DEMO_ORG,
                role="admin",
                password=password,
                name="Demo Admin",
                region=settings.default_region,
            )
        else:
            service.set_password(session, user, password)
    err.print(
        "\n[bold]Kontak demo[/bold]\n"
        f"  organization : {DEMO_ORG}\n"
        f"  admin email  : {DEMO_EMAIL}\n"
        f"  password     : {password}   (new at every start)\n"
        f"  API token    : .venv/bin/kontak token create {DEMO_EMAIL}\n"
    )


def register(app: typer.Typer) -> None:
    app.command("demo", help="Create the demo organization and admin; print their credentials.")(
        ensure_demo
    )
