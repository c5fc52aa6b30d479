"""SQL for custom field definitions."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kontak.db.models import CustomField


def list_fields(session: Session, organization_id: str) -> list[CustomField]:
    return list(
        session.scalars(
            select(CustomField)
            .where(CustomField.organization_id == organization_id)
            .order_by(CustomField.position, CustomField.key)
        )
    )


def get_by_key(session: Session, organization_id: str, key: str) -> CustomField | None:
    return session.scalars(
        select(CustomField).where(
            CustomField.organization_id == organization_id, CustomField.key == key
        )
    ).one_or_none()


def next_position(session: Session, organization_id: str) -> int:
    top = session.scalar(
        select(func.max(CustomField.position)).where(CustomField.organization_id == organization_id)
    )
    return 0 if top is None else top + 1


def add(session: Session, field: CustomField) -> None:
    session.add(field)
    session.flush()
