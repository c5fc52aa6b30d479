"""The API's sign-in: one statement on the driver's cursor of a pooled connection
(``db.session.single_read``), its user and organization handed out detached with every
column loaded, a driver's error as SQLAlchemy's. On SQLite the event loop's own connection
(``LoopReads``) finds the same, sees a token deleted elsewhere at once, and never waits:
where SQLite would wait it raises ``Busy``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, delete, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstanceState, Session, sessionmaker

from kontak.account import repository
from kontak.account.secrets import hash_token
from kontak.db.models import ApiToken, Organization, User
from kontak.db.session import Busy, LoopReads, dispose, make_engine, session_scope, single_read
from tests.factories import make_member, write_held


def test_the_token_owner_is_read_whole_and_detached(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    found = repository.get_token_owner(engine, hash_token(member.token))
    assert repository.get_token_owner(engine, hash_token("kontak_nope")) is None
    assert found is not None
    user, org = found
    with session_scope(sessions) as session:
        loaded_user = session.scalars(select(User).where(User.email == member.email)).one()
        loaded_org = session.get(Organization, loaded_user.organization_id)
    assert loaded_org is not None
    pairs: tuple[tuple[object, object], ...] = ((user, loaded_user), (org, loaded_org))
    for obj, loaded in pairs:
        state: InstanceState[object] = inspect(obj)
        assert state.detached
        assert not state.unloaded
        assert not state.modified
        for attr in state.mapper.column_attrs:
            assert getattr(obj, attr.key) == getattr(loaded, attr.key), attr.key
    # A route's session can take it in without a query, as a loaded object would be.
    with session_scope(sessions) as session:
        assert session.merge(org, load=False).slug == "acme"


def test_a_single_read_leaves_no_transaction_open_and_waits_for_no_writer(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    # A write transaction left open while the sign-in reads (SQLite: the write turn).
    with write_held(sessions, "UPDATE organization SET name = 'Changing' WHERE slug = 'acme'"):
        with single_read(engine) as cursor:
            cursor.execute("SELECT name FROM organization")
            assert cursor.fetchall() == [("acme",)]  # not the uncommitted change
            if engine.dialect.name == "sqlite":
                assert not cursor.connection.in_transaction
        found = repository.get_token_owner(engine, hash_token(member.token))
        assert found is not None
        assert found[1].name == "acme"
    found = repository.get_token_owner(engine, hash_token(member.token))
    assert found is not None
    assert found[1].name == "Changing"


def test_a_single_read_on_postgresql_sends_no_begin_and_no_rollback(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's transactions")
    with single_read(engine) as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [(1,)]
        raw: Any = cursor.connection  # psycopg's
        assert raw.autocommit  # the driver sends the statement alone: no BEGIN before it
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # Back in the pool, the connection is as any other: the next session gets a transaction.
    with engine.connect() as connection:
        assert id(connection.connection.dbapi_connection) == id(raw)  # the same one
        connection.execute(text("SELECT 1")).one()
        assert not raw.autocommit
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def test_a_failed_single_read_raises_sqlalchemys_error_and_leaves_the_pool_usable(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # As from a Connection: the API's handlers know SQLAlchemy's errors (a busy database
    # is a 503), not each driver's.
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    for _ in range(3):
        with pytest.raises(DBAPIError), single_read(engine) as cursor:
            cursor.execute("SELECT no_such_column FROM organization")
    found = repository.get_token_owner(engine, hash_token(member.token))
    assert found is not None
    assert found[0].email == member.email
    with session_scope(sessions) as session:  # a transaction as usual after it
        assert session.scalars(select(Organization.slug)).all() == ["acme"]


def sqlite_only(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's connection of the event loop")


def test_loop_reads_find_the_owner_the_pool_finds(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    sqlite_only(engine)
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    reads = LoopReads(engine)
    try:
        on_loop = repository.get_token_owner(reads, hash_token(member.token))
        assert repository.get_token_owner(reads, hash_token("kontak_nope")) is None
    finally:
        reads.close()
    pooled = repository.get_token_owner(engine, hash_token(member.token))
    assert on_loop is not None
    assert pooled is not None
    for obj, other in zip(on_loop, pooled, strict=True):
        state: InstanceState[object] = inspect(obj)
        assert state.detached
        assert not state.unloaded
        for attr in state.mapper.column_attrs:
            assert getattr(obj, attr.key) == getattr(other, attr.key), attr.key


def test_a_token_deleted_elsewhere_is_unknown_to_loop_reads_at_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    sqlite_only(engine)
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    reads = LoopReads(engine)
    try:
        assert repository.get_token_owner(reads, hash_token(member.token)) is not None
        with session_scope(sessions, write=True) as session:  # `kontak token revoke`, say
            session.execute(delete(ApiToken))
        assert repository.get_token_owner(reads, hash_token(member.token)) is None
    finally:
        reads.close()


def test_loop_reads_raise_busy_at_once_where_sqlite_would_wait(tmp_path: Path) -> None:
    # A connection that holds the file in exclusive locking mode: any other reader waits
    # (SQLite's busy timeout) or, on the event loop's connection, gets Busy at once.
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    engine = make_engine(f"sqlite:///{path}", busy_timeout_s=30)
    reads = LoopReads(engine)
    try:
        started = time.monotonic()
        with pytest.raises(Busy), single_read(reads) as cursor:
            cursor.execute("SELECT x FROM t")
        assert time.monotonic() - started < 1
        holder.close()
        with single_read(reads) as cursor:
            cursor.execute("SELECT x FROM t")
            assert cursor.fetchall() == [(1,)]
        with pytest.raises(DBAPIError), single_read(reads) as cursor:  # as from the pool
            cursor.execute("SELECT no_such_column FROM t")
    finally:
        holder.close()
        reads.close()
        dispose(engine)


def test_loop_reads_want_a_database_file() -> None:
    engine = make_engine("sqlite://", busy_timeout_s=1)
    try:
        with pytest.raises(ValueError, match="on a file"):
            LoopReads(engine)
    finally:
        dispose(engine)
