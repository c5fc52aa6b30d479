"""SQL for import job rows: create, claim, progress, finish, recover."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kontak.db.base import utcnow
from kontak.db.models import ImportJob

TERMINAL = ("completed", "rejected", "failed")


def add(session: Session, job: ImportJob) -> None:
    session.add(job)
    session.flush()


def get(session: Session, organization_id: str, job_id: str) -> ImportJob | None:
    return session.scalars(
        select(ImportJob).where(
            ImportJob.organization_id == organization_id, ImportJob.id == job_id
        )
    ).one_or_none()


def get_any(session: Session, job_id: str) -> ImportJob | None:
    return session.get(ImportJob, job_id)


def list_recent(
    session: Session, organization_id: str, *, limit: int, before_id: str | None
) -> list[ImportJob]:
    stmt = select(ImportJob).where(ImportJob.organization_id == organization_id)
    if before_id:
        stmt = stmt.where(ImportJob.id < before_id)
    return list(session.scalars(stmt.order_by(ImportJob.id.desc()).limit(limit)))


def next_queued(session: Session) -> str | None:
    """The oldest queued job, locked for this transaction where the database can."""
    stmt = select(ImportJob.id).where(ImportJob.status == "queued").order_by(ImportJob.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def claim(session: Session, job_id: str, worker: str) -> bool:
    """queued → processing, for exactly one worker."""
    now = utcnow()
    result = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == "queued")
        .values(status="processing", started_at=now, heartbeat_at=now, worker=worker)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_values(session: Session, job_id: str, **values: Any) -> None:
    session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


def processing(session: Session) -> list[ImportJob]:
    return list(session.scalars(select(ImportJob).where(ImportJob.status == "processing")))


def stale_before(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
