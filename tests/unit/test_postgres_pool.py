"""PostgreSQL's pool (db/session.py): it keeps the connections its requests use at once,
and pings one only when it may be broken.

A connection the server closed while it waited in the pool is replaced without the
request that takes it failing; a connection back in use at once is not pinged (a ping is
a round trip: two of them were ~15% of a create's CPU). Connections are not closed when
returned (each new one is a new backend process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from kontak.config import Settings
from kontak.db import session as db_session
from kontak.db.session import make_engine
from kontak.web.app import create_app
from tests.conftest import postgres_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        connection.commit()
        for _ in range(500):  # the backend sends its error and closes, then leaves
            gone = connection.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar()
            # A transaction sees pg_stat_activity as it was at its first look: the next
            # look, in a new transaction, sees the backend gone.
            connection.rollback()
            if gone:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    admin = make_engine(pg_url)
    try:
        pings = _count_pings(engine, monkeypatch)
        first = _backend(engine)
        _terminate(admin, first)
        # Back within PING_IDLE_S: its socket tells that the server closed it.
        second = _backend(engine)
        assert second != first
        assert pings == [1]
        with engine.begin() as connection:  # and the new one works in a transaction
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        admin.dispose()


def test_a_busy_pooled_connection_is_not_pinged_and_a_rested_one_is(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        pings = _count_pings(engine, monkeypatch)
        pid = _backend(engine)
        for _ in range(5):
            assert _backend(engine) == pid
        assert pings == []
        monkeypatch.setattr(db_session, "PING_IDLE_S", 0.05)
        time.sleep(0.1)
        assert _backend(engine) == pid
        assert pings == [1]
    finally:
        engine.dispose()


def test_a_rested_connection_the_server_closed_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when its socket were quiet (a dead peer sends nothing), a rested connection is
    pinged; here the server closed it, and the request still gets a working one."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    admin = make_engine(pg_url)
    try:
        monkeypatch.setattr(db_session, "PING_IDLE_S", 0.0)
        monkeypatch.setattr(db_session, "_server_spoke", lambda _connection: False)
        pings = _count_pings(engine, monkeypatch)
        first = _backend(engine)
        _terminate(admin, first)
        assert _backend(engine) != first
        assert pings == [1]
    finally:
        engine.dispose()
        admin.dispose()


def _backends_at_once(engine: Engine, count: int) -> set[int]:
    with ExitStack() as stack:
        connections = [stack.enter_context(engine.connect()) for _ in range(count)]
        return {int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in connections}


def test_the_servers_pool_keeps_the_connections_its_requests_use_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=pg_url, data_dir=tmp_path, postgres_pool_size=12)
    engine = create_app(settings).state.engine
    try:
        assert engine.pool.size() == 12
        first = _backends_at_once(engine, 12)
        assert len(first) == 12
        assert _backends_at_once(engine, 12) == first  # none closed on return, none new
    finally:
        engine.dispose()


def _plans_of_a_statement_run_often(engine: Engine) -> tuple[int, int]:
    """(generic, custom) plans of a statement run 15 times on one connection, with a
    different value each time (psycopg prepares it from its fifth run)."""
    with engine.connect() as connection:
        statement = text("SELECT count(*) FROM pg_class WHERE relname LIKE :pattern")
        for n in range(15):
            connection.execute(statement, {"pattern": f"%{n}%"})
        row = connection.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%relname LIKE%' AND NOT from_sql"
            )
        ).one()
        return int(row[0]), int(row[1])


def test_statements_run_again_and_again_are_planned_for_their_values(pg_url: str) -> None:
    # PostgreSQL plans a prepared statement once for any values from its sixth run on, and
    # searches whose plans depend on their values then walked twice as long (1M contacts:
    # q=ek 600 -> 1,340 ms from the 11th run on a connection).
    engine = make_engine(pg_url)
    try:
        generic, custom = _plans_of_a_statement_run_often(engine)
    finally:
        engine.dispose()
    assert generic == 0
    assert custom >= 10
    # Without the setting (connect_args as given), the same runs got the one plan.
    plain = make_engine(pg_url, connect_args={"options": ""})
    try:
        generic, _custom = _plans_of_a_statement_run_often(plain)
    finally:
        plain.dispose()
    assert generic > 0


def test_options_in_the_url_are_kept_beside_the_custom_plans(pg_url: str) -> None:
    engine = make_engine(f"{pg_url}?options=-c%20application_name%3Dkontak-test")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW application_name")).scalar() == "kontak-test"
            mode = connection.execute(text("SHOW plan_cache_mode")).scalar()
            assert mode == "force_custom_plan"
    finally:
        engine.dispose()
