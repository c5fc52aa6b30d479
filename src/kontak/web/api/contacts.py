"""Contacts API: create, list, read, partial update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kontak.contact import service
from kontak.contact.schemas import ContactCreate, ContactPage, ContactRead, ContactUpdate
from kontak.web.deps import ContactDeleter, ContactReader, ContactWriter, SessionDep

router = APIRouter(prefix="/contacts", tags=["contacts"])


@router.post("", status_code=201, response_model=ContactRead)
def create_contact(data: ContactCreate, session: SessionDep, org: ContactWriter) -> ContactRead:
    return service.create(session, org, data, source="api")


@router.get("", response_model=ContactPage)
def list_contacts(
    session: SessionDep,
    org: ContactReader,
    q: Annotated[
        str | None, Query(max_length=200, description="name, email, phone or handle")
    ] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ContactPage:
    return service.list_contacts(
        session, org, q=q, tag=tag, channel=channel, limit=limit, cursor=cursor
    )


@router.get("/{contact_id}", response_model=ContactRead)
def get_contact(contact_id: str, session: SessionDep, org: ContactReader) -> ContactRead:
    return service.get(session, org, contact_id)


@router.patch("/{contact_id}", response_model=ContactRead)
def update_contact(
    contact_id: str, data: ContactUpdate, session: SessionDep, org: ContactWriter
) -> ContactRead:
    return service.update(session, org, contact_id, data)


@router.delete("/{contact_id}", status_code=204)
def delete_contact(contact_id: str, session: SessionDep, org: ContactDeleter) -> Response:
    service.delete(session, org, contact_id)
    return Response(status_code=204)
