"""The ``kontak`` Typer application."""

from __future__ import annotations

import gc
import logging
import os
import socket
from typing import TYPE_CHECKING

import typer

from kontak.cli import db, demo, imports, token, user
from kontak.cli.context import err
from kontak.config import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    processes: int | None = typer.Option(
        None,
        "--processes",
        min=1,
        help="Server processes (default: KONTAK_WEB_PROCESSES, else the cores, up to 4).",
    ),
) -> None:
    """Apply pending migrations, then serve the API and the web UI."""
    import uvicorn

    from kontak.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    count = processes or settings.web_processes
    # Each process builds its settings from the environment: they share the PostgreSQL
    # connections by their number (Settings.postgres_pool).
    os.environ["KONTAK_WEB_PROCESSES"] = str(count)
    err.print(
        f"Kontak on http://{host}:{port}  (API docs: http://{host}:{port}/docs;"
        f" {count} server process{'es' if count > 1 else ''})"
    )
    if count == 1:
        uvicorn.run(
            served_app(),
            host=host,
            port=port,
            log_level="info",
            access_log=settings.access_log,
        )
        return
    # Each process builds its app from the same environment; SQLite writers of all of
    # them queue on one lock file (kontak.db.session.WriteLock).
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "kontak.cli.main:served_app",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level="info",
        access_log=settings.access_log,
    )
    Multiprocess(config, sockets=[_listening_socket(host, port)]).run()


def served_app() -> FastAPI:
    """The app of one server process, built from the environment, with what it holds after
    start-up (modules, routes, models, SQLAlchemy's and pydantic's structures, all kept for
    the life of the process) moved out of the garbage collector's sight: its full
    collections then walk only what requests leave. Measured: p99 of creates at 8
    connections 93-110 -> 62-79 ms (docs/benchmarks.md, session 8)."""
    from kontak.web.app import create_app

    _log_to_stderr()
    app = create_app(get_settings())
    gc.collect()
    gc.freeze()
    return app


def _log_to_stderr() -> None:
    """Kontak's own log (imports: their phases and end, errors) on stderr beside uvicorn's;
    without a handler only warnings and errors reached it."""
    logger = logging.getLogger("kontak")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket the server processes share. Bound here, not by uvicorn, whose own
    leaves the protocol unset, so that connections never get TCP_NODELAY and every
    keep-alive request waits ~40 ms for a delayed ACK (uvicorn issue 3149; measured here:
    22 requests/s on one connection instead of 1,300)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        err.print(f"[red]Cannot listen on {host}:{port}: {exc.strerror}; pick another --port.[/]")
        raise typer.Exit(1) from None
    sock.set_inheritable(True)
    return sock
