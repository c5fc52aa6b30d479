"""The ``kontak`` Typer application."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import socket
from collections.abc import Callable
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
    try:
        # The port first, with a socket that shares it with nobody: that fails while any
        # server listens there, a Kontak one included (its processes' sockets share the
        # port among themselves only, _listeners). Without it a second `kontak serve` on
        # the port would bind beside the first and take part of its connections.
        _listening_socket(host, port).close()
        listen = _listeners(host, port) if count > 1 else None
    except CannotListen as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    err.print(
        f"Kontak on http://{host}:{port}  (API docs: http://{host}:{port}/docs;"
        f" {count} server process{'es' if count > 1 else ''})"
    )
    if listen is None:
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
    raise typer.Exit(_serve_forked(listen, count, settings.access_log))


# A server process that ends this soon after it started is not started again: it would
# end the same way (a port, a database or a key file it cannot use).
START_UP_S = 5.0


def _serve_forked(listen: Callable[[], socket.socket], count: int, access_log: bool) -> int:
    """Serve with ``count`` processes forked from this one once the app's modules are
    loaded, so that they share those pages (uvicorn's own supervisor spawns fresh
    interpreters: each then held its own copy, ~80 MB, and itself ~70 MB more; two
    processes idle took 237 MB where one took 91 MB). Each gets its socket from ``listen``
    (:func:`_listeners`). This process only watches: SIGTERM
    or SIGINT stops them all, and one that ends on its own is started again, unless it
    ended while starting, which ends the server (exit code 1)."""
    import signal
    import time

    import uvicorn

    import kontak.web.app  # noqa: F401  loaded once, before the fork
    from kontak.children import die_with_parent

    gc.collect()
    gc.freeze()  # what is loaded now stays untouched by collections: shared pages
    children: dict[int, float] = {}
    stopping = False

    def start() -> None:
        pid = os.fork()
        if pid:
            children[pid] = time.monotonic()
            return
        code = 1
        try:  # the child (not the supervisor's handlers: uvicorn sets its own)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            die_with_parent(signal.SIGTERM)  # a killed supervisor leaves none serving
            sock = listen()
            config = uvicorn.Config(served_app(), log_level="info", access_log=access_log)
            uvicorn.Server(config).run(sockets=[sock])
            code = 0
        except CannotListen as exc:  # the port was taken since the supervisor's check
            err.print(f"[red]{exc}[/]")
        except BaseException:  # its traceback, then its exit code
            logging.getLogger("kontak").exception("a server process failed")
        finally:
            os._exit(code)

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        start()
    failed = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        if time.monotonic() - started < START_UP_S:
            err.print(
                f"[red]A server process ended while starting (exit code {code}); stopping.[/]"
            )
            failed = True
            stop(signal.SIGTERM, None)
            continue
        err.print(f"[yellow]Server process {pid} ended (exit code {code}); starting another.[/]")
        start()
    return 1 if failed else 0


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


class CannotListen(Exception):
    """The port is taken (or the address is not this machine's): the message says so."""


def _listeners(host: str, port: int) -> Callable[[], socket.socket]:
    """How each forked server process gets its listening socket.

    Where the system has ``SO_REUSEPORT`` (Linux), each process listens on a socket of its
    own, all bound to the port, and the kernel hands each new connection to one of them by
    a hash of the client's address and port. One socket shared by all let whichever
    process woke first take every connection waiting (asyncio accepts up to its backlog
    at once): wrk's 32 connections landed 30 on one process and 2 on the other, whose
    queue then set the slowest creates (docs/benchmarks.md, session 34). Elsewhere they
    share one socket."""
    if not hasattr(socket, "SO_REUSEPORT"):
        shared = _listening_socket(host, port)
        return lambda: shared
    return functools.partial(_listening_socket, host, port, reuse_port=True)


def _listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host:port``, not yet listening (uvicorn starts it). Made here,
    not by uvicorn, whose own leaves the protocol unset, so that connections never get
    TCP_NODELAY and every keep-alive request waits ~40 ms for a delayed ACK (uvicorn issue
    3149; measured here: 22 requests/s on one connection instead of 1,300)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(
            f"Cannot listen on {host}:{port}: {exc.strerror}; pick another --port."
        ) from None
    return sock
