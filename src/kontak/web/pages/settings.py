"""Settings: tags, custom fields, members and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kontak.account import service as account_service
from kontak.account.roles import Permission, Role
from kontak.custom_field import service as custom_field_service
from kontak.custom_field.schemas import CustomFieldCreate
from kontak.custom_field.values import FIELD_TYPES
from kontak.errors import Conflict, InvalidInput
from kontak.tag import service as tag_service
from kontak.tag.schemas import TagCreate
from kontak.web.deps import SessionDep
from kontak.web.pages.common import UserDep, check_csrf, redirect, render, require
from kontak.web.pages.contacts import FormDep

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, session: Any, principal: Any, status_code: int = 200, **extra: Any
) -> Response:
    org = principal.organization
    context = {
        "tags": tag_service.list_tags(session, org, limit=tag_service.TAGS_SHOWN),
        "tag_total": tag_service.count_tags(session, org),
        "fields": custom_field_service.list_fields(session, org),
        "field_types": FIELD_TYPES,
        "roles": [r.value for r in Role],
        "members": account_service.list_members(session, org) if principal.role == "admin" else [],
        "tokens": account_service.list_tokens(session, org) if principal.role == "admin" else [],
        "problem": None,
        "created_token": None,
        "created_password": None,
        **extra,
    }
    return render(request, "settings/index.html", context, status_code=status_code)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, session: SessionDep, principal: UserDep) -> Response:
    return _page(request, session, principal)


@router.post("/settings/tags", response_class=HTMLResponse)
def add_tag(request: Request, session: SessionDep, principal: UserDep, form: FormDep) -> Response:
    require(principal, Permission.TAG_WRITE)
    check_csrf(request, str(form.get("csrf_token") or ""))
    try:
        tag_service.create_tag(
            session, principal.organization, TagCreate(name=str(form.get("name") or ""))
        )
    except (InvalidInput, Conflict) as exc:
        return _page(request, session, principal, 422, problem=exc.detail)
    return redirect("/settings?notice=saved#tags")


@router.post("/settings/custom-fields", response_class=HTMLResponse)
def add_field(request: Request, session: SessionDep, principal: UserDep, form: FormDep) -> Response:
    require(principal, Permission.CUSTOM_FIELD_WRITE)
    check_csrf(request, str(form.get("csrf_token") or ""))
    options = [o.strip() for o in str(form.get("options") or "").split(",") if o.strip()]
    data = CustomFieldCreate(
        key=str(form.get("key") or "").strip(),
        label=str(form.get("label") or "").strip() or None,
        type=str(form.get("type") or "text"),
        required=bool(form.get("required")),
        options=options,
    )
    try:
        custom_field_service.create_field(session, principal.organization, data)
    except InvalidInput as exc:
        detail = "; ".join(e.message for e in exc.errors) or exc.detail
        return _page(request, session, principal, 422, problem=detail)
    except Conflict as exc:
        return _page(request, session, principal, 409, problem=exc.detail)
    return redirect("/settings?notice=saved#fields")


@router.post("/settings/members", response_class=HTMLResponse)
def add_member(
    request: Request, session: SessionDep, principal: UserDep, form: FormDep
) -> Response:
    require(principal, Permission.MEMBER_ADMIN)
    check_csrf(request, str(form.get("csrf_token") or ""))
    try:
        _, password = account_service.create_user(
            session,
            email=str(form.get("email") or ""),
            org_slug=principal.organization.slug,
            role=str(form.get("role") or "agent"),
            name=str(form.get("name") or "") or None,
        )
    except (InvalidInput, Conflict) as exc:
        return _page(request, session, principal, 422, problem=exc.detail)
    return _page(request, session, principal, created_password=password)


@router.post("/settings/tokens", response_class=HTMLResponse)
def add_token(request: Request, session: SessionDep, principal: UserDep, form: FormDep) -> Response:
    require(principal, Permission.TOKEN_ADMIN)
    check_csrf(request, str(form.get("csrf_token") or ""))
    _, raw = account_service.create_token(
        session, principal.user, name=str(form.get("name") or "web")
    )
    return _page(request, session, principal, created_token=raw)
