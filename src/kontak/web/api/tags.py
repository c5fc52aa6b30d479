"""Tags API: list with contact counts, create."""

from __future__ import annotations

from fastapi import APIRouter, Request

from kontak.tag import service
from kontak.tag.schemas import TagCreate, TagRead
from kontak.web.deps import ContactReader, TagWriter, one_trip, transaction

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", response_model=list[TagRead])
@one_trip
def list_tags(request: Request, org: ContactReader) -> list[TagRead]:
    with transaction(request, org) as (session, org):
        return service.list_tags(session, org)


@router.post("", status_code=201, response_model=TagRead)
@one_trip
def create_tag(request: Request, data: TagCreate, org: TagWriter) -> TagRead:
    with transaction(request, org) as (session, org):
        return service.create_tag(session, org, data)
