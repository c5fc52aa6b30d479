"""A write that gives up waiting for the database (SQLite's busy timeout: another process
holds a long write) is a 503 that says to try again, with Retry-After, not a 500."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kontak.config import Settings
from kontak.web.app import create_app
from tests.conftest import count_contacts
from tests.factories import Member


def test_a_write_that_waits_too_long_is_a_503(
    settings: Settings, engine: Engine, admin: Member
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer at a time")
    patient = settings.model_copy(update={"sqlite_busy_timeout_s": 0.2})
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    app = create_app(patient)
    try:
        with TestClient(app) as client:
            other.execute("BEGIN IMMEDIATE")  # another process, mid-write, not using the lock
            response = client.post(
                "/api/v1/contacts",
                json={"name": "Tunggu", "phone": "081234567890"},
                headers=admin.headers,
            )
            other.execute("ROLLBACK")
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            assert "try again" in response.json()["detail"].lower()
            assert response.json()["type"] == "urn:kontak:problem:busy"
            page = client.get("/contacts")  # reads never wait for a writer
            assert page.status_code in (200, 303)
    finally:
        other.close()
        app.state.engine.dispose()
    assert count_contacts(settings) == 0
