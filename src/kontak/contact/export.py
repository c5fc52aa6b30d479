"""Contacts as rows of the template's columns, so an export re-imports unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from kontak.contact import repository
from kontak.contact.normalize import PLATFORMS
from kontak.contact.repository import ContactFilter
from kontak.custom_field import service as custom_field_service
from kontak.db.models import Organization
from kontak.files.template import columns

BATCH = 5000


def export_rows(
    session: Session, org: Organization, filters: ContactFilter
) -> tuple[list[str], Iterator[list[str]]]:
    """The header and a lazy stream of rows (read in batches; memory stays flat)."""
    fields = custom_field_service.specs(session, org.id)
    header = columns(fields)
    keys = [f.key for f in fields]
    unfiltered = filters == ContactFilter()

    def rows() -> Iterator[list[str]]:
        before: str | None = None
        while True:
            batch = repository.export_page(
                session,
                org.id,
                filters,
                limit=BATCH,
                before_id=before,
                custom_fields=bool(keys),
            )
            if not batch:
                return
            handles, tags = repository.links_of(
                session, [r[0] for r in batch], contiguous=unfiltered
            )
            for row in batch:
                yield _row(row, handles.get(row[0]), tags.get(row[0]), keys)
            if len(batch) < BATCH:
                return
            before = batch[-1][0]

    return header, rows()


_NO_HANDLES = [""] * len(PLATFORMS)
_COLUMN_OF = {p: i for i, p in enumerate(PLATFORMS)}


def _row(
    row: repository.ExportRow,
    socials: list[tuple[str, str]] | None,
    tags: list[str] | None,
    keys: list[str],
) -> list[str]:
    _id, name, email, phone, channel, address, custom = row
    if socials:
        by_platform: list[list[str]] = [[] for _ in PLATFORMS]
        for platform, handle in socials:
            by_platform[_COLUMN_OF[platform]].append(handle)
        handles = [", ".join(h) for h in by_platform]
    else:
        handles = _NO_HANDLES
    cells = [
        name,
        email or "",
        phone or "",
        channel or "",
        address or "",
        ", ".join(tags) if tags else "",
        *handles,
    ]
    if keys:
        custom = custom or {}
        cells.extend(_value(custom.get(k)) for k in keys)
    return cells


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
