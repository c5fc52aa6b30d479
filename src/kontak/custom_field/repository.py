"""SQL for custom field definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.orm import Session

from kontak.db.models import CustomField, Organization

# Composed once: every contact written asks (see account.repository._TOKEN_OWNER).
_FIELDS = (
    select(CustomField)
    .where(CustomField.organization_id == bindparam("organization_id"))
    .order_by(CustomField.position, CustomField.key)
)


_SPECS = (
    select(
        CustomField.key,
        CustomField.label,
        CustomField.type,
        CustomField.required,
        CustomField.options,
    )
    .where(CustomField.organization_id == bindparam("organization_id"))
    .order_by(CustomField.position, CustomField.key)
)


def list_fields(session: Session, organization_id: str) -> list[CustomField]:
    return list(session.scalars(_FIELDS, {"organization_id": organization_id}))


def list_specs(session: Session, organization_id: str) -> list[Row[Any]]:
    """(key, label, type, required, options) of each field, in order: what validating a
    contact needs, read as plain rows (loading objects cost each create more than the
    query; docs/benchmarks.md, session 16)."""
    return list(session.execute(_SPECS, {"organization_id": organization_id}))


def fields_version(session: Session, organization_id: str) -> int:
    return int(
        session.execute(
            select(Organization.custom_fields_version).where(Organization.id == organization_id)
        ).scalar_one()
    )


def count_change(session: Session, organization_id: str) -> None:
    """A change to the organization's custom fields, in its transaction: a new version."""
    session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(custom_fields_version=Organization.custom_fields_version + 1)
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
