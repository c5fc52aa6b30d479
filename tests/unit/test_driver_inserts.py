"""Inserts on the driver's cursor (kontak.db.driver, a create's hot path) store what
SQLAlchemy's own insert stores, column for column, on both engines, and a refused insert
raises SQLAlchemy's IntegrityError, which the create turns into a conflict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kontak.db.driver import insert_rows
from kontak.db.models import Contact, Organization, SocialAccount
from kontak.db.session import session_scope
from kontak.ids import new_id
from tests.factories import Member

CONTACTS = cast(Table, Contact.__table__)
ACCOUNTS = cast(Table, SocialAccount.__table__)


def _org_id(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as session:
        return session.scalars(select(Organization.id).where(Organization.slug == "acme")).one()


def _contact(org_id: str, phone: str, who: str = "Siti") -> dict[str, Any]:
    when = datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=UTC)
    return {
        "id": new_id(),
        "organization_id": org_id,
        "name": "Siti Nurhaliza ✓",
        "email": f"{who}@Example.co.id",
        "email_key": f"{who.lower()}@example.co.id",
        "phone": phone,
        "channel": "whatsapp",
        "address": 'Jl. "Kenanga" 7\nBandung',
        "custom_fields": {"kota": "Bandung", "poin": 12, "aktif": True, "catatan": "ñ ü 日本"},
        "source": "api",
        "created_at": when,
        "updated_at": when,
    }


def _stored(engine: Engine, table: Table, row_id: str) -> dict[str, Any]:
    """The row as the driver reads it back, before any conversion of SQLAlchemy's."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        columns = ", ".join(c.name for c in table.columns)
        cursor.execute(f"SELECT {columns} FROM {table.name} WHERE id = {mark}", (row_id,))
        values = cursor.fetchone()
        cursor.close()
    assert values is not None
    return dict(zip((c.name for c in table.columns), values, strict=True))


def test_a_row_inserted_on_the_driver_is_stored_as_sqlalchemy_stores_it(
    engine: Engine, sessions: sessionmaker[Session], admin: Member
) -> None:
    org_id = _org_id(sessions)
    ours, theirs = _contact(org_id, "+6281234567801"), _contact(org_id, "+6281234567802", "Ani")
    accounts = [
        {
            "id": new_id(),
            "organization_id": org_id,
            "contact_id": ours["id"],
            "platform": platform,
            "handle": f"@Siti.{platform}",
            "handle_key": f"siti.{platform}",
        }
        for platform in ("instagram", "tiktok")
    ]
    their_account = {**accounts[0], "id": new_id(), "contact_id": theirs["id"]}
    their_account["handle_key"] = "siti.other"
    with session_scope(sessions, write=True) as session:
        insert_rows(session, CONTACTS, [ours])
        insert_rows(session, ACCOUNTS, accounts)  # several rows: executemany
        session.execute(insert(CONTACTS), theirs)
        session.execute(insert(ACCOUNTS), their_account)

    mine, other = _stored(engine, CONTACTS, ours["id"]), _stored(engine, CONTACTS, theirs["id"])
    assert (mine["email"], mine["email_key"]) == ("Siti@Example.co.id", "siti@example.co.id")
    for column in ("id", "phone", "email", "email_key"):
        del mine[column], other[column]
    assert mine == other
    stored_account = _stored(engine, ACCOUNTS, accounts[0]["id"])
    sqlalchemys_account = _stored(engine, ACCOUNTS, their_account["id"])
    for column in ("id", "contact_id", "handle_key"):
        del stored_account[column], sqlalchemys_account[column]
    assert stored_account == sqlalchemys_account
    with session_scope(sessions) as session:  # and the ORM reads it back as it was given
        contact = session.get(Contact, ours["id"])
        assert contact is not None
        assert contact.custom_fields == ours["custom_fields"]
        assert contact.created_at == ours["created_at"]
        handles = session.scalars(
            select(SocialAccount.handle).where(SocialAccount.contact_id == ours["id"])
        )
        assert sorted(handles) == ["@Siti.instagram", "@Siti.tiktok"]


def test_a_refused_insert_raises_sqlalchemys_integrity_error(
    engine: Engine, sessions: sessionmaker[Session], admin: Member
) -> None:
    org_id = _org_id(sessions)
    row = _contact(org_id, "+6281234567803")
    with session_scope(sessions, write=True) as session:
        insert_rows(session, CONTACTS, [row])
    # The same phone in the same organization.
    again = {**row, "id": new_id(), "email": "other@x.id", "email_key": "other@x.id"}
    with pytest.raises(IntegrityError), session_scope(sessions, write=True) as session:
        insert_rows(session, CONTACTS, [again])
    with session_scope(sessions, write=True) as session:  # the connection is usable after
        insert_rows(session, CONTACTS, [{**again, "phone": "+6281234567804"}])
    with session_scope(sessions) as session:
        assert session.get(Contact, again["id"]) is not None
