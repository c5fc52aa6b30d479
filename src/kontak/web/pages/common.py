"""What every page shares: templates, the signed-in user, CSRF, and rendering."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from kontak.account import service as account_service
from kontak.account.roles import Permission, allows
from kontak.account.service import Principal
from kontak.errors import Forbidden, Unauthorized
from kontak.messages import translate
from kontak.web import session as web_session
from kontak.web.deps import SessionDep
from kontak.web.i18n import LOCALES, negotiate, translator

templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))


class SignInRequired(Exception):
    """A page needs a signed-in user; the error handler redirects to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """What the page chrome shows of the signed-in user: plain values, so that an error
    page can still be drawn after the request's transaction was rolled back."""

    name: str
    email: str
    role: str
    locale: str | None
    org_name: str


def locale_of(request: Request, viewer: Viewer | None) -> str:
    if viewer is not None and viewer.locale in LOCALES:
        return str(viewer.locale)
    chosen = request.cookies.get(web_session.LOCALE_COOKIE)
    if chosen in LOCALES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def current_user(request: Request, session: SessionDep) -> Principal:
    browser = web_session.read(request)
    if browser is None:
        raise SignInRequired()
    try:
        principal = account_service.principal_for_user(session, browser.user_id)
    except Unauthorized:
        raise SignInRequired() from None
    user = principal.user
    request.state.viewer = Viewer(
        name=user.name,
        email=user.email,
        role=user.role,
        locale=user.locale,
        org_name=principal.organization.name,
    )
    request.state.csrf = browser.csrf
    return principal


UserDep = Annotated[Principal, Depends(current_user, scope="function")]


def check_csrf(request: Request, token: str | None) -> None:
    expected = getattr(request.state, "csrf", "")
    if not token or not expected or not secrets.compare_digest(token, expected):
        raise Forbidden(
            "The form is out of date (CSRF check failed); reload the page and try again."
        )


def require(principal: Principal, permission: Permission) -> None:
    if not allows(principal.role, permission):
        raise Forbidden(f"Your role ({principal.role}) may not do this.")


# Duplicate groups, rows a group, matches and invalid rows a page lists; the report (CSV,
# XLSX) has them all. A 1M-row file's ~10,000 of each made the import's page 12 MB and
# 540,000 elements (19 s to load; 12 s frozen opening "See Duplicated Data").
PROBLEMS_SHOWN = 50


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    locale = locale_of(request, viewer)
    t = translator(locale)
    base = {
        "t": t,
        "locale": locale,
        "locales": LOCALES,
        "viewer": viewer,
        "csrf": getattr(request.state, "csrf", ""),
        "can": (lambda perm: allows(viewer.role, Permission(perm)))
        if viewer
        else (lambda _p: False),
        "notice": t(f"notice.{request.query_params['notice']}")
        if "notice" in request.query_params
        else None,
        "path": request.url.path,
        "msg": lambda message: translate(message, locale),
        "problems_shown": PROBLEMS_SHOWN,
    }
    base.update(context or {})
    return templates.TemplateResponse(request, name, base, status_code=status_code)


def page_locale(request: Request) -> str:
    return locale_of(request, getattr(request.state, "viewer", None))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
