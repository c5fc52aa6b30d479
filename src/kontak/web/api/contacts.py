"""Contacts API: create, list, read, partial update, delete."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from kontak.contact import service
from kontak.contact.export import export_pages, write_xlsx
from kontak.contact.schemas import ContactCreate, ContactPage, ContactRead, ContactUpdate
from kontak.db.session import session_scope
from kontak.files.writers import csv_page_chunks
from kontak.web.api.imports import MEDIA, file_response
from kontak.web.deps import (
    ContactDeleter,
    ContactReader,
    ContactWriter,
    Exporter,
    one_trip,
    transaction,
)

router = APIRouter(prefix="/contacts", tags=["contacts"])


@router.post("", status_code=201, response_model=ContactRead)
@one_trip
def create_contact(request: Request, data: ContactCreate, org: ContactWriter) -> ContactRead:
    with transaction(request, org) as (session, org):
        return service.create(session, org, data, source="api")


@router.get("", response_model=ContactPage)
@one_trip
def list_contacts(
    request: Request,
    org: ContactReader,
    q: Annotated[
        str | None, Query(max_length=200, description="name, email, phone or handle")
    ] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ContactPage:
    with transaction(request, org) as (session, org):
        return service.list_contacts(
            session, org, q=q, tag=tag, channel=channel, limit=limit, cursor=cursor
        )


@router.get("/export")
def export_contacts(
    request: Request,
    org: Exporter,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
    q: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """All contacts (filtered as the list) in the template's columns, streamed."""
    filters = service.build_filter(org, q=q, tag=tag, channel=channel)
    factory = request.app.state.sessionmaker
    name = f"kontak-contacts.{format}"
    if format == "csv":

        def stream() -> Iterator[bytes]:
            with session_scope(factory) as session:
                header, pages = export_pages(session, org, filters)
                yield from csv_page_chunks(header, pages)

        return StreamingResponse(
            stream(),
            media_type=MEDIA["csv"],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as tmp:
        path = Path(tmp.name)
    try:
        with session_scope(factory) as session:
            header, pages = export_pages(session, org, filters)
            write_xlsx(path, header, pages)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return file_response(path, "xlsx", name)


@router.get("/{contact_id}", response_model=ContactRead)
@one_trip
def get_contact(request: Request, contact_id: str, org: ContactReader) -> ContactRead:
    with transaction(request, org) as (session, org):
        return service.get(session, org, contact_id)


@router.patch("/{contact_id}", response_model=ContactRead)
@one_trip
def update_contact(
    request: Request, contact_id: str, data: ContactUpdate, org: ContactWriter
) -> ContactRead:
    with transaction(request, org) as (session, org):
        return service.update(session, org, contact_id, data)


@router.delete("/{contact_id}", status_code=204)
@one_trip
def delete_contact(request: Request, contact_id: str, org: ContactDeleter) -> Response:
    with transaction(request, org) as (session, org):
        service.delete(session, org, contact_id)
    return Response(status_code=204)
