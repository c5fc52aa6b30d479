"""PostgreSQL imports skip the per-row foreign-key triggers only when the database role
may, and otherwise go on with them, the import's transaction intact."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from kontak.import_job import bulk


def test_reference_triggers_are_skipped_only_when_allowed(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kontak_plain')"
            " THEN CREATE ROLE kontak_plain; END IF; END $$"
        )
        conn.commit()
    with engine.connect() as conn, Session(bind=conn) as session:
        session.execute(text("SELECT 1"))
        conn.exec_driver_sql("SET ROLE kontak_plain")  # not a superuser
        assert bulk._without_reference_triggers(session, "org", []) is False
        assert session.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
        conn.exec_driver_sql("RESET ROLE")
        assert bulk._without_reference_triggers(session, "org", ["t1"]) is True
        assert session.execute(text("SHOW session_replication_role")).scalar_one() == "replica"
        session.rollback()
        assert session.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
