"""The lookups by identity descend the identity indexes instead of scanning: SQLite's plan for
every statement they run names an index for the contact and social-account tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from kontak.contact import repository
from kontak.db.migrate import upgrade
from kontak.db.models import Contact, ContactTag, Organization, Tag
from kontak.db.session import dispose, make_engine
from kontak.tag import repository as tags


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    path = tmp_path / "kontak.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield path, engine
    finally:
        dispose(engine)


def _plans(path: Path, engine: Engine, run: Any) -> list[list[str]]:
    """Run ``run(session)``; the query plan of each statement it executed."""
    statements: list[tuple[str, Any]] = []

    def _seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", _seen)
    try:
        with Session(engine) as session:
            run(session)
    finally:
        event.remove(engine, "before_cursor_execute", _seen)
    assert statements
    raw = sqlite3.connect(path)
    try:
        return [
            [row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, params)]
            for sql, params in statements
        ]
    finally:
        raw.close()


def test_conflict_lookups_descend_the_identity_indexes(
    database: tuple[Path, Engine],
) -> None:
    path, engine = database
    plans = _plans(
        path,
        engine,
        lambda session: repository.find_conflicts(
            session,
            "org",
            email_key="budi@contoh.id",
            phone="+6281234567890",
            socials=[("instagram", "budi"), ("tiktok", "budi.s")],
        ),
    )
    assert len(plans) == 3
    for plan in plans:
        assert not any(step.startswith("SCAN") and "CONSTANT ROWS" not in step for step in plan), (
            plan
        )
    assert "(email_key=? AND organization_id=?)" in plans[0][0]
    assert "(phone=? AND organization_id=?)" in plans[1][0]
    assert "(handle_key=?)" in plans[2][0]  # was a scan of the organization's accounts


def test_tag_counts_read_each_tags_links_from_the_tag_index(
    database: tuple[Path, Engine],
) -> None:
    path, engine = database
    (plan,) = _plans(path, engine, lambda session: tags.list_with_counts(session, "org"))
    assert any(
        "COVERING INDEX ix_contact_tag_tag_id_contact_id (tag_id=?)" in step for step in plan
    ), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_the_tag_filter_reads_the_tags_links_newest_first_from_the_index(
    database: tuple[Path, Engine],
) -> None:
    # Read newest contact first from the (tag_id, contact_id) index, the filter stops at a
    # page however many untagged contacts are newer; a sort would read every link first.
    path, engine = database
    with Session(engine) as session, session.begin():
        session.add(Organization(id="org", slug="org", name="Org"))
        session.add(Tag(id="tag-vip", organization_id="org", name="vip"))
        session.add(Contact(id="c1", organization_id="org", name="Budi", source="manual"))
        session.flush()
        session.add(ContactTag(contact_id="c1", tag_id="tag-vip", organization_id="org"))
    filters = repository.ContactFilter(tag="vip", channel="whatsapp")
    (plan,) = _plans(
        path, engine, lambda session: repository.list_page(session, "org", filters, limit=51)
    )
    assert any("ix_contact_tag_tag_id_contact_id (tag_id=?)" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    # Each link's contact is looked up by id, not found by walking the organization's.
    lookup = "SEARCH contact USING INDEX sqlite_autoindex_contact_1 (id=?)"
    assert lookup in plan, plan
