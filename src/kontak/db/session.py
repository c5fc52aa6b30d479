"""Engines and sessions: SQLite (WAL, foreign keys, explicit BEGIN) or PostgreSQL via psycopg 3.

On SQLite a transaction that will write must start with ``BEGIN IMMEDIATE``: a deferred one
that reads first and writes later fails at once with "database is locked" when another writer
committed in between, instead of waiting. Ask for it with ``session_scope(engine, write=True)``
or ``write_session(...)``; reads stay deferred so they never wait for a long import.

Writers also queue on a :class:`WriteLock` before ``BEGIN IMMEDIATE``: SQLite lets a
waiting writer sleep in growing steps (its busy handler), so under concurrent writes the
tail latency was the sleep, not the work (8 concurrent creates: p99 1.3 s). The lock hands
the turn over at once between the threads of a process, and between the processes using
one database file (server workers, a CLI import) as soon as the kernel wakes the waiter;
SQLite's own waiting remains the backstop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

WRITE_OPTION = "kontak_write"

# SQLite's default page cache is 2 MiB per connection. At a million contacts every ~15th
# single create makes FTS5 merge its newest index segments, and that merge read tens of MiB
# of index pages through the 2 MiB cache, again and again (~100 ms, 6.8 ms per create on
# average); with 64 MiB the pages stay cached (1.0 ms per create on average, p99 13 ms).
DEFAULT_CACHE_MB = 64
# The page size of a database Kontak creates (SQLite's default is 4 KiB). Its B-trees are
# wide-keyed (every index starts with the organization's 26-character id); with bigger pages
# they are shallower and split less often, but every page a commit changes goes whole into
# the WAL. Measured (CLI import of 1M rows, alternated pairs; single creates by wrk, one
# connection): 8 KiB imported in 12% less time (a segment's write alone ~8% less CPU) and
# created ~3% fewer contacts a second; 16 KiB imported in 15% less time but created ~12%
# fewer. A database created with another page size keeps it (changing it takes a VACUUM
# outside WAL mode).
PAGE_SIZE = 8192
# A pooled PostgreSQL connection back in use within this many seconds of its return is
# pinged only when the server has sent it something meanwhile (see _postgresql_engine).
PING_IDLE_S = 1.0
_RETURNED_AT = "kontak_returned_at"
# A process's PostgreSQL connections (the server's: KONTAK_POSTGRES_POOL_SIZE): opened as
# needed and then kept, as many as a server process uses at once (anyio runs at most 40
# sync routes and dependencies at a time). SQLAlchemy's default keeps 5, opens up to 10
# more and closes each of those when it is returned: at 8 concurrent creates the server
# opened ~50 connections a second, each a new backend process, and at 32 the 16th request
# waited for a connection (docs/benchmarks.md, session 18).
POOL_SIZE = 40
# Set on every PostgreSQL connection (see _postgresql_engine).
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"
# SQLite: Python's str.lower() as an SQL function on every connection. SQLite's own lower()
# and LIKE fold the case of ASCII letters only: "Ñandú" was not found by "ñandú", nor by
# "Ñandú" itself (the search lowers the text first). The search applies it to the name
# only when the text holds other letters (a Python call a row).
UNICODE_LOWER = "kontak_lower"


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(
    url: str,
    *,
    busy_timeout_s: float = 30.0,
    cache_mb: int = DEFAULT_CACHE_MB,
    background_checkpoints: bool = False,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``; SQLite gets its pragmas and creates its folder.

    With ``background_checkpoints`` (the server) no commit copies the WAL into the database
    file: a :class:`Checkpointer` thread does, so that no request waits for it (at a
    million contacts every ~150th create paid ~100 ms for it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _postgresql_engine(url, **kwargs)

    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if on_disk:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    write_lock = WriteLock(Path(f"{parsed.database}-writelock") if on_disk else None)
    options: dict[str, Any] = {
        "busy_timeout_s": busy_timeout_s,
        "cache_mb": cache_mb,
        "background_checkpoints": background_checkpoints,
    }
    engine = _sqlite_engine(url, write_lock, **options, **kwargs)
    if on_disk:
        # Write sessions (session_scope(write=True)) all go through ONE connection: SQLite
        # throws a connection's page cache away whenever another connection has written, so
        # writers spread over the pool each re-read the index pages their write touches
        # (FTS5 merges read tens of MiB at a million contacts). Writers queue for it anyway.
        # The writer's pool is the queue of the process's write sessions: each waits in
        # line as long as the line moves (every holder is bounded by the busy timeout).
        # A limit on the whole wait failed writes under load that would have gone through
        # (16 threads queued behind each other: "QueuePool limit ... timed out").
        _WRITERS[engine] = _sqlite_engine(
            url, write_lock, **options, pool_size=1, max_overflow=0, pool_timeout=None
        )
    return engine


_WRITERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_WRITE_BINDS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


class WriteLock:
    """The turn to write one SQLite database: a thread lock, plus (for a file) an exclusive
    ``flock`` of ``path`` that the other processes take too.

    A process that finds the file lock taken waits for it in the kernel (a thread of its
    own blocked in ``flock``, see :class:`_FlockWaiter`), which wakes it when the holder
    lets go. Before, it tried again every 0.5-10 ms: the holder's own next writer, already
    awake, took the turn back in between, and at 32 concurrent creates on two server
    processes one process's writes waited for the other's (p99 ~2.7x the median; with the
    kernel's wake-up ~2.2x, docs/benchmarks.md, session 35). Waiting costs no CPU either:
    the tries had cost a server process ~0.03 s of CPU through a 1M-row import."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._thread = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._waiter: _FlockWaiter | None = None

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; False when the turn did not come."""
        deadline = time.monotonic() + timeout
        if not self._thread.acquire(timeout=timeout):
            return False
        if self.path is None:
            return True
        try:
            self._file()
            assert self._waiter is not None
            if self._waiter.take_now() or self._waiter.wait(deadline - time.monotonic()):
                return True
            self._thread.release()
            return False
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        try:
            if self.path is not None and self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            if self._waiter is not None:
                self._waiter.stop()
            os.close(self._fd)
        self._fd = None
        self._waiter = None

    def __del__(self) -> None:
        self.close()

    def _file(self) -> int:
        # Opened by each process itself: flock excludes open files, and a file opened
        # before a fork would be shared by parent and child.
        if self._fd is None or self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            self._waiter = _FlockWaiter(self._fd)
        return self._fd


class _FlockWaiter:
    """A thread that waits in a blocking ``flock`` for the one thread of the process that
    wants the file lock (the others wait for :class:`WriteLock`'s thread lock), so that
    the wait can end at a deadline: a blocked ``flock`` cannot be interrupted. A turn that
    comes after its asker gave up is handed back at once. The lock belongs to the open
    file, so the asker holds it whichever thread took it. Started at the first wait."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._changed = threading.Condition()
        self._wanted = False
        self._granted = False
        self._stopped = False
        self._in_flock = False  # its thread waits in flock, or has the lock to hand on
        self._thread: threading.Thread | None = None

    def take_now(self) -> bool:
        """The file lock if it is free now. Not tried while the thread waits in ``flock``
        for an asker that gave up: it may get the lock and hand it back any moment, and
        the lock belongs to the open file, so it would hand back this one too."""
        with self._changed:
            if self._in_flock:
                return False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    def wait(self, timeout: float) -> bool:
        """The file lock, within ``timeout`` seconds; False when it did not come."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kontak-write-turn", daemon=True
                )
                self._thread.start()
            self._granted = False
            self._wanted = True
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._granted, max(timeout, 0))
            granted = self._granted
            self._wanted = self._granted = False
            return granted

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted or self._stopped)
                if self._stopped:
                    return
                self._in_flock = True
            try:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX)  # the interpreter's lock let go
                except OSError:
                    if self._stopped:
                        return  # the file was closed under it
                    log.exception("waiting for the write turn's file lock failed")
                    time.sleep(0.01)  # the asker waits to its deadline; try again
                    continue
                with self._changed:
                    if self._wanted and not self._stopped:
                        self._wanted, self._granted = False, True
                        self._changed.notify_all()
                    else:  # its asker gave up meanwhile (or the file is being closed)
                        with contextlib.suppress(OSError):
                            fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                with self._changed:
                    self._in_flock = False


def dispose(engine: Engine) -> None:
    """Close the connections of ``engine`` and of its writer."""
    _WRITE_BINDS.pop(engine, None)
    writer = _WRITERS.pop(engine, None)
    if writer is not None:
        writer.dispose()
    engine.dispose()


def writer_of(engine: Engine) -> Engine:
    """The engine that write sessions of ``engine`` use (itself but on SQLite files)."""
    return _WRITERS.get(engine, engine)


def _sqlite_engine(
    url: str,
    write_lock: WriteLock,
    *,
    busy_timeout_s: float,
    cache_mb: int,
    background_checkpoints: bool,
    **kwargs: Any,
) -> Engine:
    engine = create_engine(
        url,
        connect_args={
            "timeout": busy_timeout_s,
            "check_same_thread": False,
            "factory": _SQLiteConnection,
        },
        **kwargs,
    )
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN is ours (see module doc).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new database only; before WAL
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if background_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # negative: KiB
        cursor.close()
        dbapi_connection.create_function(UNICODE_LOWER, 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw: _SQLiteConnection = conn.connection.dbapi_connection  # type: ignore[assignment]
        if not conn.get_execution_options().get(WRITE_OPTION, False):
            _begin(raw, "BEGIN")
            return
        if not raw.holds_turn:
            # Bounded: should a thread ever hold it too long, SQLite's waiting takes over.
            raw.holds_turn = write_lock.acquire(timeout=busy_timeout_s)
        try:
            _begin(raw, "BEGIN IMMEDIATE")
        except BaseException:
            _release(raw)
            raise

    def _begin(raw: _SQLiteConnection, statement: str) -> None:
        # On the driver: through SQLAlchemy's exec_driver_sql the BEGIN cost a create ~3% of
        # its CPU, inside the write turn (docs/benchmarks.md, session 35).
        try:
            raw.execute(statement)
            # Another connection may have changed the schema since this one last read it
            # (an import sets the search triggers aside inside its transaction). SQLite
            # 3.40 then fails the first DELETE with foreign-key actions ("no such table:
            # contact") where any other statement re-reads the schema; this read makes it
            # re-read first (~2 µs when nothing changed). tests/unit/test_schema_changes.py
            raw.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error

    def _release(raw: _SQLiteConnection | None) -> None:
        if raw is not None and raw.holds_turn:
            raw.holds_turn = False
            write_lock.release()

    # The turn passes as soon as the transaction's COMMIT or ROLLBACK is done, before the
    # session's and the pool's bookkeeping (~0.05 ms a create that other writers, in every
    # process, waited through), or when the connection is thrown away.
    # (SQLAlchemy hands these the pool's proxy of the driver's connection.)
    def _do_commit(proxy: Any) -> None:
        try:
            proxy.commit()
        finally:
            _release(getattr(proxy, "dbapi_connection", proxy))

    def _do_rollback(proxy: Any) -> None:
        try:
            proxy.rollback()
        finally:
            _release(getattr(proxy, "dbapi_connection", proxy))

    dialect.do_commit = _do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = _do_rollback  # type: ignore[method-assign,assignment]

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        _release(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        _release(dbapi_connection)

    return engine


class _SQLiteConnection(sqlite3.Connection):
    """The driver's connection, knowing whether it holds its engine's write turn."""

    holds_turn = False


def _postgresql_engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose pool pings a connection before handing it out only when it may be
    broken: back from a rest of at least :data:`PING_IDLE_S`, or sent something by the
    server while it waited in the pool, where it expects nothing. A server that closes a
    connection (shutdown or restart, ``pg_terminate_backend``, an idle timeout) first sends
    it an error and the end of the stream, so its socket reads ready: a poll costs a system
    call, the ping a round trip. SQLAlchemy's ``pool_pre_ping`` pings at every checkout:
    two round trips of every API request (its sign-in and its transaction), ~15% of a
    create's CPU on PostgreSQL (docs/benchmarks.md, session 18). A failed ping invalidates
    the pool and the checkout goes on with a new connection, as with ``pool_pre_ping``."""
    kwargs.setdefault("pool_size", POOL_SIZE)
    # A few more beyond the requests (the import worker, other threads), closed when returned.
    kwargs.setdefault("max_overflow", 10)
    # The most recently returned first: connections beyond the load rest, and only they
    # are pinged (after PING_IDLE_S); the busy ones stay warm.
    kwargs.setdefault("pool_use_lifo", True)
    # Every statement planned for its values. psycopg prepares a statement run five times
    # on a connection, and PostgreSQL then plans it once for any values after five more
    # runs: searches whose plans depend on the values (a text's share, a bound id) then
    # walked with trigram scans and parallel workers that their values did not call for
    # (1M + 374,000 contacts, q=ek from the 11th run on a connection: 600 -> 1,340 ms).
    # The statements stay prepared (parsed once); planning costs ~0.1-2 ms each.
    # Added to the URL's own options, if it gives some (connect_args would replace them).
    given = make_url(url).query.get("options")
    given = given if isinstance(given, str) else " ".join(given or ())
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("options", f"{given} {CUSTOM_PLANS}".strip())
    engine = create_engine(url, **kwargs)
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None:
            return  # new: it has just connected
        if time.monotonic() - returned < PING_IDLE_S and not _server_spoke(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError(f"the ping failed: {error}") from error
            raise

    return engine


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether the socket of an idle connection has bytes (or the end of the stream) to
    read; True when it has no socket left."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # closed on this side
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def begin_write(session: Session) -> None:
    """Mark the session's coming transaction as a writer (SQLite: BEGIN IMMEDIATE).

    Must be called before the session runs its first statement.
    """
    session.connection(execution_options={WRITE_OPTION: True})


def _write_bind(engine: Engine) -> Engine:
    """The writer of ``engine`` with the write option on every connection: its transaction
    (and the write turn) starts with the session's first statement, not before."""
    bind = _WRITE_BINDS.get(engine)
    if bind is None:
        bind = _WRITE_BINDS[engine] = writer_of(engine).execution_options(**{WRITE_OPTION: True})
    return bind


@contextmanager
def session_scope(factory: sessionmaker[Session], *, write: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error. A ``write`` session
    takes the write turn at its first statement (see :func:`_write_bind`)."""
    session = factory(bind=_write_bind(factory.kw["bind"])) if write else factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def single_read(engine: Engine) -> Iterator[DBAPICursor]:
    """The driver's cursor on a pooled connection, for ONE read statement run in no
    transaction of its own (a lone statement is its own transaction, as consistent as one
    in a ``BEGIN``): on SQLite without ``BEGIN`` (the driver's autocommit, see
    :func:`make_engine`), on PostgreSQL in autocommit (the driver would send a ``BEGIN``
    and, when the connection goes back to the pool, a ``ROLLBACK``: two round trips).
    Every API request's sign-in reads this way: a session's ``BEGIN``, schema check and
    ``COMMIT`` cost it more than its query (docs/benchmarks.md, session 16), and then
    SQLAlchemy's ``Connection`` did too: its events, cached compilation and result
    handling took ~65 µs of the sign-in's ~120, the query itself ~7 (session 34). The
    statement is the caller's, in the driver's parameter style. Not for two statements
    that must agree. A driver's error comes out as SQLAlchemy's (``OperationalError``...),
    as from a ``Connection``."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    postgres = engine.dialect.name == "postgresql"
    pooled = engine.raw_connection()
    try:
        if postgres:
            pooled.driver_connection.autocommit = True  # type: ignore[union-attr]
        cursor = pooled.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        if postgres:
            pooled.driver_connection.autocommit = False  # type: ignore[union-attr]
    except BaseException as error:
        if postgres:
            pooled.invalidate()  # in an unknown state: the pool opens another
        if isinstance(error, dbapi_error):
            raise exc.DBAPIError.instance(None, None, error, dbapi_error) from error
        raise
    finally:
        pooled.close()


class Checkpointer:
    """SQLite: copies the WAL into the database file every ``every_s`` seconds, in a
    thread of its own (PASSIVE: it never waits for, nor blocks, readers and writers).
    Each round first runs the ``chores`` (the server's: indexing rows an import left to
    the search index, see ``kontak.db.search_index``)."""

    def __init__(
        self,
        engine: Engine,
        every_s: float = 1.0,
        chores: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.engine = engine
        self.every_s = every_s
        self.chores = list(chores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kontak-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.checkpoint()

    def checkpoint(self) -> tuple[int, int, int]:
        """(busy, WAL frames, frames copied), as SQLite reports them."""
        with self.engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            busy, frames, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            for chore in self.chores:
                try:
                    chore()
                except Exception:  # the next round tries again; never end the thread
                    log.exception("background chore failed")
            try:
                self.checkpoint()
            except Exception:
                log.exception("WAL checkpoint failed")
