"""What every command shares: settings, a transaction, and KontakError → exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kontak.config import Settings, get_settings
from kontak.db import migrate
from kontak.db.session import dispose, make_engine, make_sessionmaker, session_scope
from kontak.errors import Conflict, InvalidInput, KontakError, NotFound

# stdout carries results (a token, JSON); messages and progress go to stderr.
err = Console(stderr=True, highlight=False)

EXIT_REJECTED = 1
EXIT_USAGE = 2


def exit_code(exc: KontakError) -> int:
    if isinstance(exc, InvalidInput | NotFound):
        return EXIT_USAGE
    if isinstance(exc, Conflict):
        return EXIT_REJECTED
    return EXIT_REJECTED


@contextmanager
def transaction(settings: Settings | None = None, *, write: bool = True) -> Iterator[Session]:
    """A session in one transaction; a KontakError ends the command with its message."""
    settings = settings or get_settings()
    engine = make_engine(
        settings.resolved_database_url,
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        cache_mb=settings.sqlite_cache_mb,
    )
    try:
        with session_scope(make_sessionmaker(engine), write=write) as session:
            yield session
    except KontakError as exc:
        err.print(f"[red]Error:[/red] {exc.detail}")
        for item in getattr(exc, "errors", []):
            err.print(f"  {item.field}: {item.message}")
        raise typer.Exit(exit_code(exc)) from None
    except DBAPIError:
        # A database without Kontak's tables (or with older ones) fails on its first
        # query: say what to run instead of a driver's traceback. Checked only then.
        if not migrate.is_behind(settings.resolved_database_url):
            raise
        err.print(
            "[red]Error:[/red] the database has no Kontak schema yet, or an older one: "
            "run `kontak db upgrade` first."
        )
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        dispose(engine)


def out(text: str) -> None:
    """One line of result on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
