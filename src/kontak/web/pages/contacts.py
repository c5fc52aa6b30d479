"""Contacts pages: the list, Create New Contact (manual form and import), detail, edit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kontak.account.roles import Permission
from kontak.contact import service
from kontak.contact.normalize import CHANNELS, PLATFORMS
from kontak.contact.schemas import ContactCreate, ContactRead, ContactUpdate
from kontak.custom_field import service as custom_field_service
from kontak.errors import Conflict, InvalidInput
from kontak.messages import translate
from kontak.tag import service as tag_service
from kontak.web.deps import SessionDep
from kontak.web.pages.common import UserDep, check_csrf, page_locale, redirect, render, require

router = APIRouter(include_in_schema=False)


async def form_data(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


@router.get("/contacts", response_class=HTMLResponse)
def contact_list(
    request: Request,
    session: SessionDep,
    principal: UserDep,
    q: str | None = None,
    tag: str | None = None,
    channel: str | None = None,
    cursor: str | None = None,
) -> Response:
    org = principal.organization
    try:
        page = service.list_contacts(
            session, org, q=q, tag=tag, channel=channel or None, cursor=cursor, limit=50
        )
        problem = None
    except InvalidInput as exc:
        page, problem = None, exc.detail
    return render(
        request,
        "contacts/list.html",
        {
            "page": page,
            "problem": problem,
            "q": q or "",
            "tag": tag or "",
            "channel": channel or "",
            **_tag_choices(session, org),
            "channels": CHANNELS,
            "filtered": bool(q or tag or channel),
        },
    )


def _tag_choices(session: Any, org: Any) -> dict[str, Any]:
    """The tag filter: a choice of every tag with its count, or past ``TAGS_SHOWN`` tags a
    text field that suggests the first of them."""
    names = tag_service.tag_names(session, org, limit=tag_service.TAGS_SHOWN + 1)
    if len(names) > tag_service.TAGS_SHOWN:
        return {"tags": None, "tag_suggestions": names[: tag_service.TAGS_SHOWN]}
    return {"tags": tag_service.list_tags(session, org), "tag_suggestions": []}


def _known_tags(session: Any, org: Any) -> dict[str, Any]:
    """The form's tag suggestions: the first ``TAGS_SHOWN`` by name, and whether there are
    more (then the page asks the API for those that start with what is typed)."""
    names = tag_service.tag_names(session, org, limit=tag_service.TAGS_SHOWN + 1)
    return {
        "known_tags": names[: tag_service.TAGS_SHOWN],
        "more_tags": len(names) > tag_service.TAGS_SHOWN,
    }


def _form_context(
    session: Any, principal: Any, values: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    org = principal.organization
    return {
        "values": values or {"social_accounts": [], "tags": [], "custom_fields": {}},
        "errors": {},
        "conflicts": [],
        "channels": CHANNELS,
        "platforms": PLATFORMS,
        "fields": custom_field_service.list_fields(session, org),
        **_known_tags(session, org),
        **extra,
    }


@router.get("/contacts/new", response_class=HTMLResponse)
def new_contact(request: Request, session: SessionDep, principal: UserDep) -> Response:
    require(principal, Permission.CONTACT_WRITE)
    settings = request.app.state.settings
    return render(
        request,
        "contacts/new.html",
        _form_context(session, principal, max_upload_mb=settings.max_upload_bytes // (1024 * 1024)),
    )


def _submitted(form: FormData, fields: list[Any]) -> dict[str, Any]:
    """The form as the API's contact shape (empty inputs left out)."""
    platforms = form.getlist("social_platform")
    handles = form.getlist("social_handle")
    socials = [
        {"platform": str(p), "handle": str(h)}
        for p, h in zip(platforms, handles, strict=False)
        if str(h).strip()
    ]
    tags: list[str] = []
    for raw in form.getlist("tags"):
        tags += [t for t in str(raw).split(",") if t.strip()]
    values: dict[str, Any] = {
        key: (str(form.get(key) or "").strip() or None)
        for key in ("name", "email", "phone", "channel", "address")
    }
    values["social_accounts"] = socials
    values["tags"] = tags
    values["custom_fields"] = {
        f.key: (str(form.get(f"cf_{f.key}") or "").strip() or None)
        for f in fields
        if f"cf_{f.key}" in form
    }
    for f in fields:
        if f.type == "boolean":  # an unticked box is not sent at all: it means false
            values["custom_fields"][f.key] = "true" if form.get(f"cf_{f.key}") else "false"
    return values


def _errors_by_field(exc: InvalidInput, locale: str) -> dict[str, str]:
    return {e.field: translate(e.message, locale) for e in exc.errors}


@router.post("/contacts/new", response_class=HTMLResponse)
def create_contact(
    request: Request, session: SessionDep, principal: UserDep, form: FormDep
) -> Response:
    require(principal, Permission.CONTACT_WRITE)
    check_csrf(request, str(form.get("csrf_token") or ""))
    fields = custom_field_service.list_fields(session, principal.organization)
    values = _submitted(form, fields)
    settings = request.app.state.settings
    extra = {"max_upload_mb": settings.max_upload_bytes // (1024 * 1024)}
    try:
        created = service.create(
            session, principal.organization, ContactCreate(**values), source="manual"
        )
    except InvalidInput as exc:
        ctx = _form_context(
            session, principal, values, errors=_errors_by_field(exc, page_locale(request)), **extra
        )
        return render(request, "contacts/new.html", ctx, status_code=422)
    except Conflict as exc:
        ctx = _form_context(session, principal, values, conflicts=exc.conflicts, **extra)
        return render(request, "contacts/new.html", ctx, status_code=409)
    return redirect(f"/contacts/{created.id}?notice=created")


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_detail(
    contact_id: str, request: Request, session: SessionDep, principal: UserDep
) -> Response:
    contact = service.get(session, principal.organization, contact_id)
    fields = custom_field_service.list_fields(session, principal.organization)
    return render(request, "contacts/detail.html", {"contact": contact, "fields": fields})


def _values_of(contact: ContactRead) -> dict[str, Any]:
    values = contact.model_dump()
    values["social_accounts"] = [s.model_dump() for s in contact.social_accounts]
    return values


@router.get("/contacts/{contact_id}/edit", response_class=HTMLResponse)
def edit_contact(
    contact_id: str, request: Request, session: SessionDep, principal: UserDep
) -> Response:
    require(principal, Permission.CONTACT_WRITE)
    contact = service.get(session, principal.organization, contact_id)
    return render(
        request,
        "contacts/edit.html",
        _form_context(session, principal, _values_of(contact), contact=contact),
    )


@router.post("/contacts/{contact_id}/edit", response_class=HTMLResponse)
def save_contact(
    contact_id: str, request: Request, session: SessionDep, principal: UserDep, form: FormDep
) -> Response:
    require(principal, Permission.CONTACT_WRITE)
    check_csrf(request, str(form.get("csrf_token") or ""))
    contact = service.get(session, principal.organization, contact_id)
    fields = custom_field_service.list_fields(session, principal.organization)
    values = _submitted(form, fields)
    try:
        service.update(session, principal.organization, contact_id, ContactUpdate(**values))
    except InvalidInput as exc:
        ctx = _form_context(
            session,
            principal,
            values,
            errors=_errors_by_field(exc, page_locale(request)),
            contact=contact,
        )
        return render(request, "contacts/edit.html", ctx, status_code=422)
    except Conflict as exc:
        ctx = _form_context(session, principal, values, conflicts=exc.conflicts, contact=contact)
        return render(request, "contacts/edit.html", ctx, status_code=409)
    return redirect(f"/contacts/{contact_id}?notice=saved")


@router.post("/contacts/{contact_id}/delete")
def delete_contact(
    contact_id: str, request: Request, session: SessionDep, principal: UserDep, form: FormDep
) -> Response:
    require(principal, Permission.CONTACT_DELETE)
    check_csrf(request, str(form.get("csrf_token") or ""))
    service.delete(session, principal.organization, contact_id)
    return redirect("/contacts?notice=deleted")
