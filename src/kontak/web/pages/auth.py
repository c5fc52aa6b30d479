"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kontak.account import service as account_service
from kontak.errors import Unauthorized
from kontak.web import session as web_session
from kontak.web.deps import SessionDep
from kontak.web.i18n import LOCALES
from kontak.web.pages.common import check_csrf, current_user, redirect, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after sign-in."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or urlsplit(target).netloc
    ):
        return "/contacts"
    return target


@router.get("/", response_class=RedirectResponse)
def home(request: Request) -> Response:
    return redirect("/contacts" if web_session.read(request) else "/sign-in")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": None, "email": ""})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        principal = account_service.authenticate_password(session, email, password)
    except Unauthorized:
        return render(
            request,
            "sign_in.html",
            {"next": _safe_next(next), "error": "signin.failed", "email": email},
            status_code=401,
        )
    response = redirect(_safe_next(next))
    web_session.start(request, response, principal.user.id)
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    current_user(request, session)
    check_csrf(request, csrf_token)
    response = redirect("/sign-in?notice=signed_out")
    web_session.end(response)
    return response


@router.post("/language")
def language(
    request: Request,
    session: SessionDep,
    locale: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Remember the chosen language: on the user when signed in, and in a cookie."""
    if locale not in LOCALES:
        locale = "en"
    browser = web_session.read(request)
    if browser is not None:
        principal = current_user(request, session)
        check_csrf(request, csrf_token)
        account_service.set_locale(session, principal.user, locale)
    response = redirect(_safe_next(next))
    response.set_cookie(
        web_session.LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax", path="/"
    )
    return response
