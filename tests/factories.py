"""Plain helpers that create what tests need through the real services."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from kontak.account import service as account_service
from kontak.db.session import session_scope


@dataclass(frozen=True)
class Member:
    email: str
    org: str
    role: str
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_member(
    sessions: sessionmaker[Session],
    email: str,
    *,
    org: str,
    role: str,
    password: str = "s3cret-pass",
) -> Member:
    """A user of ``org`` (created if new) with an API token."""
    with session_scope(sessions, write=True) as session:
        user, _ = account_service.create_user(
            session, email=email, org_slug=org, role=role, password=password
        )
        _, token = account_service.create_token(session, user, name="test")
    return Member(email=email, org=org, role=role, token=token, password=password)


def contact_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "name": "Budi Santoso",
        "email": "budi@example.com",
        "phone": "0812-3456-7890",
        "channel": "whatsapp",
        "address": "Jl. Merdeka No. 1, Jakarta",
        "tags": ["vip"],
    }
    payload.update(overrides)
    return payload


@contextmanager
def write_held(sessions: sessionmaker[Session], statement: str) -> Iterator[None]:
    """A write transaction that has run ``statement`` and stays open (SQLite: it holds the
    write turn) on a thread of its own until the block ends; then it commits."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope(sessions, write=True) as session:
            session.execute(text(statement))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        thread.join(10)
