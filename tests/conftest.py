"""Shared fixtures: a migrated database per engine (SQLite and PostgreSQL), apps and clients.

Each test runs against freshly emptied tables: the app commits for real (as in production),
and the rows are deleted after the test. With ``CI=true`` a missing PostgreSQL server fails
the run instead of skipping its tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kontak.config import Settings
from kontak.db.base import Base
from kontak.db.migrate import upgrade
from kontak.db.session import make_engine, make_sessionmaker
from kontak.web.app import create_app
from tests.factories import Member, make_member

PG_ADMIN_URL = os.environ.get(
    "KONTAK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_admin() -> Engine:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        engine.dispose()
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(message)
    return engine


def create_postgres_database() -> tuple[str, Engine, str]:
    """A new, empty database on the test server: (url, admin engine, name)."""
    admin = postgres_admin()
    name = f"kontak_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


def drop_postgres_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped when the block ends."""
    url, admin, name = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(admin, name)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of each engine, shared by the tests of one session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'kontak.db'}"
        upgrade(url)
        yield url
        return
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url)
    yield engine
    _empty_tables(engine)
    engine.dispose()


# Above this many contacts a PostgreSQL test's rows are cleared by TRUNCATE: DELETE took
# ~18 s for the 200,000 of a big import's test (each row's cascades, triggers and index
# entries), TRUNCATE well under a second; for the few rows of most tests DELETE is the
# faster (~7 against ~40 ms: TRUNCATE makes every table's files anew).
TRUNCATE_FROM_CONTACTS = 5_000


def _empty_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            contacts = conn.exec_driver_sql("SELECT COUNT(*) FROM contact").scalar_one()
            if contacts > TRUNCATE_FROM_CONTACTS:
                tables = conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                ).scalars()
                conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))
                return
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        # No rows left: nothing is pending indexing.
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DELETE FROM search_pending")
        elif conn.exec_driver_sql("SELECT to_regclass('contact_trigram_pending')").scalar():
            conn.exec_driver_sql("DELETE FROM contact_trigram_pending")


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> Member:
    return make_member(sessions, "admin@acme.co.id", org="acme", role="admin")


@pytest.fixture
def api(client: TestClient, admin: Member) -> TestClient:
    """A client acting as the admin of organization 'acme'."""
    client.headers["Authorization"] = f"Bearer {admin.token}"
    return client


def count_contacts(settings: Settings) -> int:
    """How many contacts the database holds, across organizations, and no phone twice."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(text("SELECT COUNT(*) FROM contact")).scalar_one()
            phones = conn.execute(
                text("SELECT COUNT(DISTINCT phone) FROM contact WHERE phone IS NOT NULL")
            ).scalar_one()
            with_phone = conn.execute(
                text("SELECT COUNT(*) FROM contact WHERE phone IS NOT NULL")
            ).scalar_one()
        assert phones == with_phone, "a phone is stored twice"
        return int(total)
    finally:
        engine.dispose()
