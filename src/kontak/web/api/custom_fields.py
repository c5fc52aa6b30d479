"""Custom fields API: list (everyone), create (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from kontak.custom_field import service
from kontak.custom_field.schemas import CustomFieldCreate, CustomFieldRead
from kontak.web.deps import ContactReader, CustomFieldAdmin, one_trip, transaction

router = APIRouter(prefix="/custom-fields", tags=["custom fields"])


@router.get("", response_model=list[CustomFieldRead])
@one_trip
def list_custom_fields(request: Request, org: ContactReader) -> list[CustomFieldRead]:
    with transaction(request, org) as (session, org):
        return service.list_fields(session, org)


@router.post("", status_code=201, response_model=CustomFieldRead)
@one_trip
def create_custom_field(
    request: Request, data: CustomFieldCreate, org: CustomFieldAdmin
) -> CustomFieldRead:
    with transaction(request, org) as (session, org):
        return service.create_field(session, org, data)
