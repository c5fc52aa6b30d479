"""Tags API: list with contact counts, create."""

from __future__ import annotations

from fastapi import APIRouter

from kontak.tag import service
from kontak.tag.schemas import TagCreate, TagRead
from kontak.web.deps import ContactReader, SessionDep, TagWriter

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", response_model=list[TagRead])
def list_tags(session: SessionDep, org: ContactReader) -> list[TagRead]:
    return service.list_tags(session, org)


@router.post("", status_code=201, response_model=TagRead)
def create_tag(data: TagCreate, session: SessionDep, org: TagWriter) -> TagRead:
    return service.create_tag(session, org, data)
