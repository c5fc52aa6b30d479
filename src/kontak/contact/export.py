"""Contacts as rows of the template's columns, so an export re-imports unchanged.

A million contacts are read in pages of ``BATCH``, each page as columns (one list per
template column): the CSV writer then looks at a column at once instead of at each of 13
million cells (``files.writers.csv_lines``), and the links come in one range scan per
page, grouped here (the tag names of each set of tag ids joined once per export).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from kontak.contact import repository
from kontak.contact.normalize import PLATFORMS
from kontak.contact.repository import ContactFilter
from kontak.custom_field import service as custom_field_service
from kontak.db.models import Organization
from kontak.errors import FieldError, InvalidInput
from kontak.files.template import columns
from kontak.files.writers import write_xlsx_pages
from kontak.files.xlsx_sheet import MAX_ROW, SheetFull

BATCH = 5000

Columns = list[Sequence[str]]


def write_xlsx(path: Path, header: list[str], pages: Iterable[Columns]) -> None:
    """The export as an XLSX file; more contacts than a sheet holds is the user's to fix."""
    try:
        write_xlsx_pages(path, header, pages)
    except SheetFull:
        raise InvalidInput(
            f"An XLSX sheet holds at most {MAX_ROW:,} contacts under its header row, and this "
            "export has more. Export as CSV, or export fewer contacts with a search, tag or "
            "channel filter.",
            [FieldError("format", "use csv for this many contacts")],
        ) from None


def export_pages(
    session: Session, org: Organization, filters: ContactFilter
) -> tuple[list[str], Generator[Columns, None, None]]:
    """The header and a lazy stream of pages, each the columns of up to ``BATCH`` contacts
    (newest first; memory stays flat)."""
    fields = custom_field_service.specs(session, org.id)
    header = columns(fields)
    keys = [f.key for f in fields]
    unfiltered = filters == ContactFilter()

    def pages() -> Generator[Columns, None, None]:
        tag_cells = _TagCells(session, org.id)
        before: str | None = None
        with repository.reading_once(session):
            while True:
                page = repository.export_page(
                    session,
                    org.id,
                    filters,
                    limit=BATCH,
                    before_id=before,
                    custom_fields=bool(keys),
                )
                if not page:
                    return
                ids, name, email, phone, channel, address, custom = page
                tags, socials = repository.links_of(session, ids, contiguous=unfiltered)
                yield [
                    name,
                    email,
                    phone,
                    channel,
                    address,
                    tag_cells.column(ids, tags),
                    *_handle_columns(ids, socials),
                    *_custom_columns(custom, keys),
                ]
                if len(ids) < BATCH:
                    return
                before = ids[-1]

    return header, pages()


class _TagCells:
    """The ``tags`` cell of each set of tag ids (names sorted, joined by ", "), made once
    per export: an organization's contacts share a few sets. The names are read as pages
    name tags not seen yet (so a tag made while the export runs is named too). Both maps
    are bounded: an organization whose contacts hold more sets starts them over."""

    LIMIT = 20_000

    def __init__(self, session: Session, organization_id: str) -> None:
        self._session = session
        self._organization_id = organization_id
        self._names: dict[str, str] = {}
        self._cells: dict[str, str] = {"": ""}

    def column(self, ids: Sequence[str], tags: dict[str, str]) -> list[str]:
        """The cells of contacts ``ids``, whose tag ids (joined by spaces; ids hold none)
        are ``tags``."""
        cells = self._cells
        new = set(tags.values()).difference(cells)
        if new:
            if len(cells) + len(new) > self.LIMIT:
                cells.clear()
                cells[""] = ""
                self._names.clear()
            split = {ids_: ids_.split(" ") for ids_ in new}
            unknown = {t for parts in split.values() for t in parts}.difference(self._names)
            if unknown:
                self._names.update(
                    repository.tag_names(self._session, self._organization_id, unknown)
                )
            names = self._names
            for ids_, parts in split.items():
                cells[ids_] = ", ".join(sorted(names[t] for t in parts))
        get = tags.get
        return [cells[get(i, "")] for i in ids]


_PLACE = {p: i for i, p in enumerate(PLATFORMS)}


def _handle_columns(
    ids: Sequence[str], socials: dict[str, list[tuple[str, str, str]]]
) -> list[list[str]]:
    """One column per platform: each contact's handles there, by handle, joined by ", "."""
    out = [[""] * len(ids) for _ in PLATFORMS]
    if not socials:
        return out
    row_of = {contact_id: i for i, contact_id in enumerate(ids)}
    for contact_id, accounts in socials.items():
        row = row_of.get(contact_id)
        if row is None:  # another organization's contact in the page's id range
            continue
        if len(accounts) == 1:
            platform, _key, handle = accounts[0]
            out[_PLACE[platform]][row] = handle
            continue
        by_platform: dict[str, list[str]] = {}
        for platform, _key, handle in sorted(accounts):
            by_platform.setdefault(platform, []).append(handle)
        for platform, handles in by_platform.items():
            out[_PLACE[platform]][row] = ", ".join(handles)
    return out


def _custom_columns(custom: Sequence[str | None], keys: list[str]) -> list[list[str]]:
    values = [json.loads(c) if c else {} for c in custom] if keys else []
    return [[_value(v.get(k)) for v in values] for k in keys]


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
