"""Tags API: list with contact counts, create."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kontak.tag import service
from kontak.tag.schemas import TagCreate, TagRead
from kontak.web.deps import ContactReader, TagWriter, one_trip, transaction

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", response_model=list[TagRead])
@one_trip
def list_tags(
    request: Request,
    org: ContactReader,
    q: Annotated[
        str | None,
        Query(max_length=200, description="only the tags whose name starts with this"),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="at most this many, by name")
    ] = None,
) -> list[TagRead]:
    """Every tag by name with its contact count; ``q`` and ``limit`` (both optional) narrow
    it for suggestions as a user types (an organization can hold 200,000 tags: 4.5 s and
    24 MB whole)."""
    with transaction(request, org) as (session, org):
        return service.list_tags(session, org, limit=limit, prefix=q)


@router.post("", status_code=201, response_model=TagRead)
@one_trip
def create_tag(request: Request, data: TagCreate, org: TagWriter) -> TagRead:
    with transaction(request, org) as (session, org):
        return service.create_tag(session, org, data)
