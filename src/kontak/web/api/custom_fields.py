"""Custom fields API: list (everyone), create (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from kontak.custom_field import service
from kontak.custom_field.schemas import CustomFieldCreate, CustomFieldRead
from kontak.web.deps import ContactReader, CustomFieldAdmin, SessionDep

router = APIRouter(prefix="/custom-fields", tags=["custom fields"])


@router.get("", response_model=list[CustomFieldRead])
def list_custom_fields(session: SessionDep, org: ContactReader) -> list[CustomFieldRead]:
    return service.list_fields(session, org)


@router.post("", status_code=201, response_model=CustomFieldRead)
def create_custom_field(
    data: CustomFieldCreate, session: SessionDep, org: CustomFieldAdmin
) -> CustomFieldRead:
    return service.create_field(session, org, data)
