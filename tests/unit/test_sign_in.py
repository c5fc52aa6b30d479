"""The API's sign-in: one statement on the driver's cursor of a pooled connection
(``db.session.single_read``), its user and organization handed out detached with every
column loaded, a driver's error as SQLAlchemy's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstanceState, Session, sessionmaker

from kontak.account import repository
from kontak.account.secrets import hash_token
from kontak.db.models import Organization, User
from kontak.db.session import session_scope, single_read
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


def test_the_token_owner_is_made_once_while_its_row_stays_the_same(
    engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    member = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    other = make_member(sessions, "boss@other.co.id", org="other", role="admin")
    first = repository.get_token_owner(engine, hash_token(member.token))
    again = repository.get_token_owner(engine, hash_token(member.token))
    assert first is not None
    assert again is not None
    assert again[0] is first[0]  # reused: making them cost ~4% of a create
    assert again[1] is first[1]
    with session_scope(sessions, write=True) as session:  # any column of either changes
        session.execute(text("UPDATE organization SET name = 'Acme Baru' WHERE slug = 'acme'"))
    changed = repository.get_token_owner(engine, hash_token(member.token))
    assert changed is not None
    assert changed[1] is not first[1]
    assert changed[1].name == "Acme Baru"
    assert first[1].name != "Acme Baru"  # the objects handed out before are left as they were
    monkeypatch.setattr(repository, "OWNERS_KEPT", 1)  # a bounded number kept
    owner = repository.get_token_owner(engine, hash_token(other.token))
    assert owner is not None
    assert owner[1].slug == "other"
    assert len(repository._OWNERS) == 1


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
