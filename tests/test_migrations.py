"""Migrations are reversible and match the models exactly, on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from kontak.db import search_index
from kontak.db.base import Base, include_name
from kontak.db.migrate import MIGRATIONS_DIR, downgrade, upgrade
from kontak.db.session import make_engine
from tests.conftest import create_postgres_database, drop_postgres_database, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with postgres_database() as url:
        yield url


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


def _sqlite_state(path: Path) -> dict[str, Any]:
    """What migration 0009 must keep: every row with its rowid, the search indexes' answers
    and health, the triggers; and the identity indexes' columns, which it changes."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        state: dict[str, Any] = {
            table: raw.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
            for table in ("contact", "social_account", "contact_tag")
        }
        state["found"] = raw.execute(
            "SELECT c.id FROM contact_search s JOIN contact c ON c.rowid = s.rowid"
            " WHERE contact_search MATCH 'bud' ORDER BY c.id"
        ).fetchall()
        state["found_social"] = raw.execute(
            "SELECT a.id FROM social_search s JOIN social_account a ON a.rowid = s.rowid"
            " WHERE social_search MATCH 'bud' ORDER BY a.id"
        ).fetchall()
        for fts in ("contact_search", "social_search"):  # raises when an index is wrong
            raw.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        state["triggers"] = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()
        state["keys"] = {
            table: sorted(
                tuple(c for _seq, _cid, c in raw.execute(f"PRAGMA index_info('{name}')"))
                for _s, name, unique, *_ in raw.execute(f"PRAGMA index_list('{table}')")
                if unique or not name.startswith("sqlite_")
            )
            for table in ("contact", "social_account", "contact_tag")
        }
        return state
    finally:
        raw.close()


def test_sqlite_identity_keys_turn_around_keeping_rowids_search_and_cascades(
    tmp_path: Path,
) -> None:
    # Migration 0009 rebuilds contact and social_account on SQLite: the rows keep their
    # rowids (the full-text indexes point at them), nothing cascades while the old table
    # is dropped, and the new keys enforce the same identity.
    path = tmp_path / "kontak.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0008")
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    for org in ("o1", "o2"):
        raw.execute(
            "INSERT INTO organization (id, slug, name, default_region, created_at)"
            " VALUES (?, ?, ?, 'ID', '2026-01-01')",
            (org, org, org),
        )
        raw.execute(
            "INSERT INTO tag (id, organization_id, name, created_at)"
            " VALUES (?, ?, 'vip', '2026-01-01')",
            (f"t-{org}", org),
        )
    for n in range(40):
        org = "o1" if n % 4 else "o2"
        cid = f"c{n:03d}"
        raw.execute(
            "INSERT INTO contact (id, organization_id, name, email_key, phone, custom_fields,"
            " source, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, '{}', 'test', '2026-01-01', '2026-01-01')",
            (cid, org, f"{'Budi' if n % 3 else 'Siti'} {n}", f"u{n}@contoh.id", f"+6281{n:08d}"),
        )
        raw.execute(
            "INSERT INTO social_account (id, organization_id, contact_id, platform, handle,"
            " handle_key) VALUES (?, ?, ?, 'instagram', ?, ?)",
            (f"s{n:03d}", org, cid, f"budi_{n}", f"budi_{n}"),
        )
        raw.execute(
            "INSERT INTO contact_tag (contact_id, tag_id, organization_id) VALUES (?, ?, ?)",
            (cid, f"t-{org}", org),
        )
    raw.close()
    engine = make_engine(url)
    try:
        search_index.catch_up(engine)  # the rows go into the full-text indexes
    finally:
        engine.dispose()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("DELETE FROM contact WHERE id IN ('c003', 'c010', 'c011')")  # rowid gaps
    raw.close()
    before = _sqlite_state(path)
    assert before["keys"] == {
        "contact": [
            ("id",),
            ("organization_id", "email_key"),
            ("organization_id", "id"),
            ("organization_id", "phone"),
        ],
        "social_account": [("contact_id",), ("id",), ("organization_id", "platform", "handle_key")],
        "contact_tag": [("contact_id", "tag_id"), ("organization_id", "tag_id")],
    }

    upgrade(url, "0009")  # the migration this checks (later ones change contact_tag's index)

    after = _sqlite_state(path)
    assert after["keys"] == {
        "contact": [
            ("email_key", "organization_id"),
            ("id",),
            ("organization_id", "id"),
            ("phone", "organization_id"),
        ],
        "social_account": [("contact_id",), ("handle_key", "platform", "organization_id"), ("id",)],
        "contact_tag": [("contact_id", "tag_id"), ("tag_id",)],
    }
    assert len(after["contact"]) == 37
    assert len(after["contact_tag"]) == 37
    for kept in ("contact", "social_account", "contact_tag", "found", "found_social", "triggers"):
        assert after[kept] == before[kept], kept
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):  # same organization, same email
        raw.execute(
            "INSERT INTO contact (id, organization_id, name, email_key, custom_fields, source,"
            " created_at, updated_at) VALUES ('x', 'o1', 'X', 'u1@contoh.id', '{}', 't', '', '')"
        )
    raw.execute(  # another organization may hold it
        "INSERT INTO contact (id, organization_id, name, email_key, custom_fields, source,"
        " created_at, updated_at) VALUES ('x', 'o2', 'X', 'u1@contoh.id', '{}', 't', '', '')"
    )
    raw.execute("DELETE FROM contact WHERE id = 'c001'")  # cascades as before
    assert raw.execute("SELECT count(*) FROM contact_tag WHERE contact_id = 'c001'").fetchone() == (
        0,
    )
    assert raw.execute(
        "SELECT count(*) FROM social_account WHERE contact_id = 'c001'"
    ).fetchone() == (0,)
    raw.execute("DELETE FROM contact WHERE id IN ('c001', 'x')")
    raw.close()

    downgrade(url, "0008")
    back = _sqlite_state(path)
    assert back["keys"] == before["keys"]
    assert back["contact"] == [r for r in before["contact"] if r[1] != "c001"]
    assert back["found"] == [r for r in before["found"] if r != ("c001",)]


def test_postgresql_identity_keys_turn_around_with_the_rows_kept() -> None:
    url, admin, name = create_postgres_database()
    try:
        upgrade(url, "0008")
        engine = make_engine(url)
        insert = (
            "INSERT INTO contact (id, organization_id, name, email_key, phone, custom_fields,"
            " source, created_at, updated_at) VALUES (%s, %s, 'Budi', 'budi@contoh.id',"
            " %s, '{}', 'api', now(), now())"
        )
        try:
            with engine.begin() as conn:
                for org in ("o1", "o2"):
                    conn.exec_driver_sql(
                        "INSERT INTO organization (id, slug, name, default_region, created_at)"
                        " VALUES (%s, %s, %s, 'ID', now())",
                        (org, org, org),
                    )
                conn.exec_driver_sql(insert, ("c1", "o1", "+6281234567890"))
            upgrade(url)
            with engine.connect() as conn:
                keys = (
                    conn.exec_driver_sql(
                        "SELECT conname FROM pg_constraint WHERE contype = 'u'"
                        " AND conrelid = 'contact'::regclass ORDER BY conname"
                    )
                    .scalars()
                    .all()
                )
                assert keys == [
                    "uq_contact_email_key_organization_id",
                    "uq_contact_phone_organization_id",
                ]
                assert conn.exec_driver_sql("SELECT id FROM contact").scalars().all() == ["c1"]
            with engine.begin() as conn:  # another organization may hold the same keys
                conn.exec_driver_sql(insert, ("c2", "o2", "+6281234567890"))
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.exec_driver_sql(insert, ("c3", "o1", "+6281299999999"))
            downgrade(url, "0008")
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM contact").scalar() == 2
        finally:
            engine.dispose()
    finally:
        drop_postgres_database(admin, name)


def _collations(conn: Any) -> dict[tuple[str, str], str | None]:
    rows = conn.exec_driver_sql(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN ('character varying', 'text')"
    )
    return {(table, column): collation for table, column, collation in rows}


def test_postgresql_collations_are_the_models_and_keys_turn_bytewise_with_rows_kept() -> None:
    """alembic's compare_metadata does not compare collations: every string column's is
    checked here against the model's, and migration 0012 is run both ways over a stored
    contact, its account, its tag link and its trigram row."""
    url, admin, name = create_postgres_database()
    try:
        upgrade(url, "0011")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO organization (id, slug, name, default_region, created_at)"
                    " VALUES ('o1', 'o1', 'O', 'ID', now())"
                )
                conn.exec_driver_sql(
                    "INSERT INTO tag (id, organization_id, name, created_at) VALUES ('t1', 'o1', 'vip', now())"
                )
                conn.exec_driver_sql(
                    "INSERT INTO contact (id, organization_id, name, email_key, phone,"
                    " custom_fields, source, created_at, updated_at) VALUES ('c1', 'o1',"
                    " 'Budi', 'budi@contoh.id', '+6281234567890', '{}', 'api', now(), now())"
                )
                conn.exec_driver_sql(
                    "INSERT INTO social_account (id, organization_id, contact_id, platform,"
                    " handle, handle_key) VALUES ('s1', 'o1', 'c1', 'instagram', 'Budi', 'budi')"
                )
                conn.exec_driver_sql(
                    "INSERT INTO contact_tag (contact_id, tag_id, organization_id)"
                    " VALUES ('c1', 't1', 'o1')"
                )
                before = _collations(conn)
                conn.exec_driver_sql("ANALYZE contact, social_account, contact_tag")
            assert before[("contact", "phone")] is None
            upgrade(url)
            with engine.begin() as conn:
                stored = _collations(conn)
                # A new type drops a column's statistics: the migration gathers them again.
                analyzed = conn.exec_driver_sql(
                    "SELECT tablename, attname FROM pg_stats WHERE schemaname = 'public'"
                    " AND tablename IN ('contact', 'social_account', 'contact_tag')"
                ).all()
                assert {("contact", "phone"), ("social_account", "contact_id")} <= {
                    (table, column) for table, column in analyzed
                }
                expected = {
                    (table.name, column.name): getattr(
                        column.type.dialect_impl(engine.dialect), "collation", None
                    )
                    for table in Base.metadata.sorted_tables
                    for column in table.columns
                    if (table.name, column.name) in stored
                }
                assert expected[("contact", "phone")] == "C"
                assert {k: stored[k] for k in expected} == expected
                trigram = {k: v for k, v in stored.items() if k[0] == "contact_trigram"}
                if trigram:  # pg_trgm could be installed (migration 0008)
                    assert trigram[("contact_trigram", "contact_id")] == "C"
                    assert trigram[("contact_trigram", "name")] is None
                    # the trigger that keeps it in step was made again
                    conn.exec_driver_sql("UPDATE contact SET phone = '+6281299999999'")
                    assert (
                        conn.exec_driver_sql(
                            "SELECT phone FROM contact_trigram WHERE contact_id = 'c1'"
                        ).scalar()
                        == "+6281299999999"
                    )
                assert (
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM contact c JOIN social_account s ON s.contact_id = c.id"
                        " JOIN contact_tag l ON l.contact_id = c.id JOIN tag t ON t.id = l.tag_id"
                        " WHERE c.phone LIKE '+62812%%' AND s.handle_key = 'budi'"
                    ).scalar()
                    == 1
                )
            with pytest.raises(IntegrityError), engine.begin() as conn:  # keys still unique
                conn.exec_driver_sql(
                    "INSERT INTO contact (id, organization_id, name, phone, custom_fields,"
                    " source, created_at, updated_at) VALUES ('c2', 'o1', 'Siti',"
                    " '+6281299999999', '{}', 'api', now(), now())"
                )
            with engine.begin() as conn:  # the cascade still reaches every table
                conn.exec_driver_sql("DELETE FROM contact WHERE id = 'c1'")
                assert (
                    conn.exec_driver_sql(
                        "SELECT (SELECT count(*) FROM social_account)"
                        " + (SELECT count(*) FROM contact_tag)"
                    ).scalar()
                    == 0
                )
            downgrade(url, "0011")
            with engine.connect() as conn:
                assert _collations(conn) == before
        finally:
            engine.dispose()
    finally:
        drop_postgres_database(admin, name)


def test_the_channel_index_is_postgresqls_only(empty_url: str) -> None:
    # Migration 0013: PostgreSQL reads a channel's contacts from it; SQLite's import would
    # pay 8-15% more for it (docs/benchmarks.md, session 26).
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        indexes = {index["name"] for index in inspect(engine).get_indexes("contact")}
    finally:
        engine.dispose()
    assert ("ix_contact_organization_id_channel_id" in indexes) == (
        engine.dialect.name == "postgresql"
    )
    assert "ix_contact_organization_id_id_channel" in indexes


def test_the_listing_index_holds_the_channel_and_keeps_sqlites_figures(empty_url: str) -> None:
    # Migration 0014: (organization_id, id) -> (organization_id, id, channel), so that
    # SQLite's walk for a channel tests it in the index. SQLite's planner figures for the
    # old index are carried over, so that its choices hold until the next ANALYZE.
    upgrade(empty_url, "0013")
    engine = make_engine(empty_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        if sqlite:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO organization (id, slug, name, default_region, created_at)"
                    " VALUES ('o1', 'o', 'O', 'ID', '2026-12-07 00:00:00')"
                )
                for i in range(20):
                    conn.exec_driver_sql(
                        "INSERT INTO contact (id, organization_id, name, phone, channel,"
                        " address, custom_fields, source, created_at, updated_at)"
                        f" VALUES ('c{i:02d}', 'o1', 'N', '+62812000000{i:02d}', 'sms', '',"
                        " '{}', 'api', '2026-12-07 00:00:00', '2026-12-07 00:00:00')"
                    )
                conn.exec_driver_sql("ANALYZE contact")
                old = _stat(conn, "ix_contact_organization_id_id")
            assert old is not None
        upgrade(empty_url)
        with engine.connect() as conn:
            listing = {
                index["name"]: index["column_names"]
                for index in inspect(conn).get_indexes("contact")
                if (index["name"] or "").startswith("ix_contact_organization_id_id")
            }
            assert listing == {
                "ix_contact_organization_id_id_channel": ["organization_id", "id", "channel"]
            }
            if sqlite:
                assert _stat(conn, "ix_contact_organization_id_id_channel") == f"{old} 1"
                assert _stat(conn, "ix_contact_organization_id_id") is None
        downgrade(empty_url, "0013")
        with engine.connect() as conn:
            names = {index["name"] for index in inspect(conn).get_indexes("contact")}
            assert "ix_contact_organization_id_id" in names
            assert "ix_contact_organization_id_id_channel" not in names
            if sqlite:
                assert _stat(conn, "ix_contact_organization_id_id") == old
    finally:
        engine.dispose()


def test_sqlites_tag_links_table_is_its_keys_b_tree_with_links_figures_and_cascades_kept(
    tmp_path: Path,
) -> None:
    # Migration 0015: contact_tag WITHOUT ROWID on SQLite (one B-tree less to write a link
    # into). The links, the tag index, the planner's figures and the cascades are kept,
    # both ways.
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0014")
    engine = make_engine(url)

    def state(conn: Any) -> dict[str, Any]:
        return {
            "links": conn.exec_driver_sql(
                "SELECT contact_id, tag_id, organization_id FROM contact_tag ORDER BY 1, 2"
            ).fetchall(),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]))
                for index in inspect(conn).get_indexes("contact_tag")
            ),
            "figures": sorted(
                conn.exec_driver_sql(
                    "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'contact_tag'"
                ).fetchall()
            ),
            "without_rowid": conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'contact_tag'"
            )
            .scalar_one()
            .endswith("WITHOUT ROWID"),
        }

    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO organization (id, slug, name, default_region, created_at)"
                " VALUES ('o1', 'o', 'O', 'ID', '2026-12-07 00:00:00')"
            )
            for t in ("t1", "t2"):
                conn.exec_driver_sql(
                    "INSERT INTO tag (id, organization_id, name, created_at)"
                    f" VALUES ('{t}', 'o1', '{t}', '2026-12-07 00:00:00')"
                )
            for i in range(12):
                conn.exec_driver_sql(
                    "INSERT INTO contact (id, organization_id, name, phone, channel,"
                    " address, custom_fields, source, created_at, updated_at)"
                    f" VALUES ('c{i:02d}', 'o1', 'N', '+62812000000{i:02d}', 'sms', '',"
                    " '{}', 'api', '2026-12-07 00:00:00', '2026-12-07 00:00:00')"
                )
                for t in ("t1", "t2")[: 1 + i % 2]:
                    conn.exec_driver_sql(
                        "INSERT INTO contact_tag (contact_id, tag_id, organization_id)"
                        f" VALUES ('c{i:02d}', '{t}', 'o1')"
                    )
            conn.exec_driver_sql("ANALYZE contact_tag")
            before = state(conn)
        assert not before["without_rowid"]
        assert len(before["links"]) == 18
        figures = dict(before["figures"])
        assert set(figures) == {
            "sqlite_autoindex_contact_tag_1",
            "ix_contact_tag_tag_id_contact_id",
        }

        upgrade(url)
        with engine.connect() as conn:
            after = state(conn)
            assert after["without_rowid"]
            assert after["links"] == before["links"]
            assert after["indexes"] == before["indexes"]
            # A WITHOUT ROWID table's key has its figures under the table's name.
            assert dict(after["figures"]) == {
                "contact_tag": figures["sqlite_autoindex_contact_tag_1"],
                "ix_contact_tag_tag_id_contact_id": figures["ix_contact_tag_tag_id_contact_id"],
            }
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT tag_id FROM contact_tag WHERE contact_id = 'c01'"
            ).fetchall()
            assert [row[-1] for row in plan] == [
                "SEARCH contact_tag USING PRIMARY KEY (contact_id=?)"
            ]
        with engine.begin() as conn:  # the contact's deletion still takes its links
            conn.exec_driver_sql("DELETE FROM contact WHERE id = 'c01'")
            assert state(conn)["links"] == [r for r in before["links"] if r[0] != "c01"]

        downgrade(url, "0014")
        with engine.connect() as conn:
            back = state(conn)
            assert not back["without_rowid"]
            assert back["indexes"] == before["indexes"]
            assert back["figures"] == before["figures"]
            assert back["links"] == [r for r in before["links"] if r[0] != "c01"]
    finally:
        engine.dispose()


def _stat(conn: Any, index: str) -> str | None:
    row = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE idx = ?", (index,)).first()
    return None if row is None else str(row[0])


def test_sqlites_search_indexes_drop_their_column_sizes_keeping_answers_and_settings(
    tmp_path: Path,
) -> None:
    # Migration 0016: the FTS5 indexes are made again with columnsize=0 (no <index>_docsize
    # shadow table: one B-tree insert less per indexed row) and an 8 MiB hashsize (fewer
    # segments to merge), and rebuilt. Their answers,
    # their settings (automerge off) and their health are kept both ways; rows that were
    # pending are indexed by the rebuild, so their ranges go (none is indexed twice).
    path = tmp_path / "kontak.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0015")
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(
        "INSERT INTO organization (id, slug, name, default_region, created_at)"
        " VALUES ('o1', 'o1', 'O', 'ID', '2026-01-01')"
    )

    def add(first: int, count: int) -> None:
        for n in range(first, first + count):
            raw.execute(
                "INSERT INTO contact (id, organization_id, name, email_key, phone, custom_fields,"
                " source, created_at, updated_at)"
                " VALUES (?, 'o1', ?, ?, ?, '{}', 'test', '2026-01-01', '2026-01-01')",
                (
                    f"c{n:03d}",
                    f"{'Budi' if n % 3 else 'Siti'} {n}",
                    f"u{n}@contoh.id",
                    f"+6281{n:08d}",
                ),
            )
            raw.execute(
                "INSERT INTO social_account (id, organization_id, contact_id, platform, handle,"
                " handle_key) VALUES (?, 'o1', ?, 'instagram', ?, ?)",
                (f"s{n:03d}", f"c{n:03d}", f"budi_{n}", f"budi_{n}"),
            )

    def shadow_tables() -> set[str]:
        return {
            name
            for (name,) in raw.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE '%search_docsize'"
            )
        }

    def settings(index: str) -> list[tuple[str, Any]]:
        return raw.execute(f"SELECT k, v FROM {index}_config ORDER BY k").fetchall()

    def found() -> dict[str, list[str]]:
        """What each index answers for 'bud'; FTS5's integrity-check of both against
        their tables when nothing is pending (it raises when an index is wrong)."""
        if not raw.execute("SELECT 1 FROM search_pending").fetchone():
            for fts in ("contact_search", "social_search"):
                raw.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
        return {
            "contact": [
                c
                for (c,) in raw.execute(
                    "SELECT c.id FROM contact_search s JOIN contact c ON c.rowid = s.rowid"
                    " WHERE contact_search MATCH 'bud' ORDER BY c.id"
                )
            ],
            "social": [
                a
                for (a,) in raw.execute(
                    "SELECT a.id FROM social_search s JOIN social_account a"
                    " ON a.rowid = s.rowid WHERE social_search MATCH 'bud' ORDER BY a.id"
                )
            ],
        }

    def triggers() -> list[tuple[str, str]]:
        return raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()

    add(0, 30)
    raw.close()
    engine = make_engine(url)
    try:
        search_index.catch_up(engine)  # indexed
    finally:
        engine.dispose()
    raw = sqlite3.connect(path, isolation_level=None)
    add(30, 10)  # left pending (the insert triggers add them to a range)
    assert raw.execute("SELECT count(*) FROM search_pending").fetchone()[0] == 2
    before, triggers_before = found(), triggers()
    assert shadow_tables() == {"contact_search_docsize", "social_search_docsize"}
    assert settings("contact_search") == [("automerge", 0), ("version", 4)]
    raw.close()

    upgrade(url)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        assert shadow_tables() == set()
        assert (
            "columnsize=0"
            in raw.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'contact_search'"
            ).fetchone()[0]
        )
        assert (
            settings("contact_search")
            == settings("social_search")
            == [("automerge", 0), ("hashsize", 8 << 20), ("version", 4)]
        )
        assert raw.execute("SELECT count(*) FROM search_pending").fetchone()[0] == 0
        after = found()
        # The pending rows are found now: the rebuild indexed them.
        assert {"c031", "c032"} <= set(after["contact"]) - set(before["contact"])
        assert after["contact"] == [
            c for (c,) in raw.execute("SELECT id FROM contact WHERE name LIKE '%bud%' ORDER BY id")
        ]
        assert len(after["social"]) == 40
        assert len(before["social"]) == 30
        assert triggers() == triggers_before
    finally:
        raw.close()

    engine = make_engine(url)
    try:
        assert search_index.catch_up(engine) == 0  # nothing left to index twice
    finally:
        engine.dispose()

    downgrade(url, "0015")
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        assert shadow_tables() == {"contact_search_docsize", "social_search_docsize"}
        assert settings("contact_search") == [("automerge", 0), ("version", 4)]
        assert found() == after
        assert triggers() == triggers_before
    finally:
        raw.close()


def test_sqlites_search_tables_lose_their_planner_figures_and_others_keep_theirs(
    tmp_path: Path,
) -> None:
    # Migration 0017: figures taken while a search index was nearly empty made SQLite scan
    # the whole <index>_data table in every delete of a merged segment's pages.
    path = tmp_path / "kontak.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0016")
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("ANALYZE")  # as after a big import, before its catch-up
        raw.execute(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('contact_search_data', NULL, '2'),"
            " ('social_search_data', NULL, '2'), ('contact', 'ix_contact_org_id', '1000000 1')"
        )
        plan = "EXPLAIN QUERY PLAN DELETE FROM contact_search_data WHERE id >= ? AND id <= ?"
        assert "SCAN" in str(raw.execute(plan, (1, 2)).fetchall())  # the figures' plan
        upgrade(url, "0017")
        left = raw.execute("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl").fetchall()
        fresh = sqlite3.connect(path)  # a connection that reads the figures now
        try:
            assert "USING INTEGER PRIMARY KEY" in str(fresh.execute(plan, (1, 2)).fetchall())
        finally:
            fresh.close()
    finally:
        raw.close()
    assert ("contact", "ix_contact_org_id", "1000000 1") in left
    assert not [row for row in left if "_search_" in row[0]], left
