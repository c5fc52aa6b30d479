"""Contacts as rows of the template's columns, so an export re-imports unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from kontak.contact import repository
from kontak.contact.normalize import PLATFORMS
from kontak.contact.repository import ContactFilter
from kontak.custom_field import service as custom_field_service
from kontak.db.models import Contact, Organization
from kontak.files.template import columns

BATCH = 1000


def export_rows(
    session: Session, org: Organization, filters: ContactFilter
) -> tuple[list[str], Iterator[list[str]]]:
    """The header and a lazy stream of rows (read in batches; memory stays flat)."""
    fields = custom_field_service.specs(session, org.id)
    header = columns(fields)
    keys = [f.key for f in fields]

    def rows() -> Iterator[list[str]]:
        before: str | None = None
        while True:
            batch = repository.list_page(session, org.id, filters, limit=BATCH, before_id=before)
            for contact in batch:
                yield _row(contact, keys)
            if len(batch) < BATCH:
                return
            before = batch[-1].id
            session.expunge_all()

    return header, rows()


def _row(contact: Contact, keys: list[str]) -> list[str]:
    handles: dict[str, list[str]] = {p: [] for p in PLATFORMS}
    for social in contact.social_accounts:
        handles[social.platform].append(social.handle)
    custom = contact.custom_fields or {}
    return [
        contact.name,
        contact.email or "",
        contact.phone or "",
        contact.channel or "",
        contact.address or "",
        ", ".join(t.name for t in contact.tags),
        *(", ".join(handles[p]) for p in PLATFORMS),
        *(_value(custom.get(k)) for k in keys),
    ]


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
