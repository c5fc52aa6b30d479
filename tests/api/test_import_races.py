"""PostgreSQL lets writers run side by side: an import whose rows wait on another writer's
uncommitted keys can be chosen as a deadlock's victim. That is a lost race, not a failure:
the import is checked again and reported against what the other writer stored.

(SQLite gives the write turn to one writer at a time; no deadlock can happen there.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from kontak.config import Settings
from kontak.contact import service as contact_service
from kontak.contact.schemas import ContactCreate
from kontak.db.models import Organization
from tests.api.test_streamed_imports import import_as
from tests.conftest import count_contacts
from tests.factories import Member
from tests.files import csv_bytes


def waiting_on_a_lock(engine: Engine, timeout_s: float = 20.0) -> None:
    """Return once some backend of this database waits for a row lock."""
    deadline = time.monotonic() + timeout_s
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("no backend ever waited for a lock")


def test_an_import_chosen_as_a_deadlock_victim_is_checked_again(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine, admin: Member
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite runs one writer at a time")
    data = csv_bytes([["name", "phone"], ["Ani", "081234567801"], ["Budi", "081234567802"]])
    # PostgreSQL looks for a deadlock once, deadlock_timeout after a backend starts to
    # wait, and the backend that finds it is rolled back. The import's connections look
    # after 2 s (time for the other writer to start waiting too), the other writer's never
    # first: the import is the victim, whatever the machine's load.
    database = engine.url.database
    with engine.connect() as connection:
        connection.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET deadlock_timeout = '2s'")
        connection.commit()
    engine.dispose()  # new connections take the setting
    try:
        importing_loses_a_deadlock(settings, sessions, engine, data)
    finally:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" RESET deadlock_timeout')
            connection.commit()
        engine.dispose()
    assert count_contacts(settings) == 2


def importing_loses_a_deadlock(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine, data: bytes
) -> None:
    with engine.connect() as other, Session(bind=other) as writer:
        other.exec_driver_sql("SET deadlock_timeout = '60s'")  # for the connection's life
        other.commit()  # so that the session's own transaction is the one it commits
        org = writer.query(Organization).filter_by(slug="acme").one()
        # The other writer holds Budi's phone, uncommitted: the import's insert waits on it.
        contact_service.create(writer, org, ContactCreate(name="Budi B", phone="081234567802"))
        writer.flush()
        result: dict[str, Any] = {}
        importing = threading.Thread(
            target=lambda: result.update(import_as(settings, sessions, "acme", data))
        )
        importing.start()
        waiting_on_a_lock(engine)
        # Now it takes Ani's phone, which the waiting import wrote: a cycle. The import,
        # waiting longer, finds the deadlock and is rolled back; this insert goes on.
        contact_service.create(writer, org, ContactCreate(name="Ani A", phone="081234567801"))
        writer.commit()
        importing.join(timeout=60)
    assert result["status"] == "rejected", result
    assert result["duplicate_count"] == 2  # both rows match what the other writer stored
