"""Migrations are reversible and match the models exactly, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kontak.db.base import Base, include_name
from kontak.db.migrate import MIGRATIONS_DIR, downgrade, upgrade
from kontak.db.session import make_engine
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    url, admin, name = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(admin, name)


def test_upgrade_downgrade_upgrade_leaves_the_model_schema(empty_url: str) -> None:
    upgrade(empty_url)
    downgrade(empty_url, "base")
    engine = make_engine(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.connect() as conn:  # nor any trigger or virtual table
            assert (
                conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE tbl_name != 'alembic_version'"
                    if engine.dialect.name == "sqlite"
                    else "SELECT 1 WHERE false"
                ).fetchall()
                == []
            )
    finally:
        engine.dispose()
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": include_name})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_postgresql_trigram_table_is_filled_from_existing_contacts_and_given_back() -> None:
    # Migration 0008 on a database that already holds contacts: their trigrams move to
    # the new table; a downgrade puts the indexes back on the contacts.
    url, admin, name = create_postgres_database()
    try:
        upgrade(url, "0007")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO organization (id, slug, name, default_region, created_at)"
                    " VALUES ('o1', 'acme', 'Acme', 'ID', now())"
                )
                conn.exec_driver_sql(
                    "INSERT INTO contact (id, organization_id, name, email_key, phone,"
                    " custom_fields, source, created_at, updated_at) VALUES"
                    " ('c1', 'o1', 'Budi', 'budi@contoh.id', '+6281234567890', '{}', 'api',"
                    " now(), now())"
                )
            upgrade(url)
            with engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT * FROM contact_trigram").fetchall()
                assert [tuple(r) for r in rows] == [
                    ("c1", "o1", "Budi", "budi@contoh.id", "+6281234567890")
                ]
            downgrade(url, "0007")
            with engine.connect() as conn:
                indexes = {
                    n
                    for (n,) in conn.exec_driver_sql(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'contact'"
                    )
                }
                assert {"ix_contact_name_trgm", "ix_contact_phone_trgm"} <= indexes
                assert (
                    conn.exec_driver_sql("SELECT to_regclass('contact_trigram')").scalar() is None
                )
        finally:
            engine.dispose()
    finally:
        drop_postgres_database(admin, name)


def test_migration_files_are_named_by_date_and_slug() -> None:
    names = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert names
    for name in names:
        date, _, slug = name.removesuffix(".py").partition("_")
        assert len(date) == 10, name
        assert date[4] == date[7] == "-", name
        assert slug, name
