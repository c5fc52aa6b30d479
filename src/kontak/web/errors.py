"""Errors become RFC 9457 problem+json once, here; nothing else formats an error response."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from kontak.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    KontakError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from kontak.messages import translate
from kontak.web.i18n import negotiate

log = logging.getLogger("kontak.web")

PROBLEM = "application/problem+json"
STATUS: dict[type[KontakError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    PayloadTooLarge: 413,
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}
BUSY = (
    "The database is busy with other writes (a large import?); nothing was saved. "
    "Try again in a moment."
)


def problem(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response; ``extra`` adds members such as ``errors`` or ``conflicts``."""
    body: dict[str, Any] = {
        "type": f"urn:kontak:problem:{slug}" if slug else "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: KontakError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/openapi", "/docs"))


def _page_error(request: Request, status: int, detail: str) -> Response:
    from kontak.web.pages.common import render

    return render(request, "error.html", {"message": detail, "status": status}, status_code=status)


def _kontak_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KontakError)
    if not _is_api(request):
        if isinstance(exc, Unauthorized):
            return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)
        return _page_error(request, status_of(exc), exc.detail)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput):
        locale = negotiate(request.headers.get("accept-language"))
        extra["errors"] = [
            {"field": e.field, "message": translate(e.message, locale)} for e in exc.errors
        ]
    if isinstance(exc, Conflict):
        extra["conflicts"] = [
            {"field": c.field, "value": c.value, "contact_id": c.contact_id} for c in exc.conflicts
        ]
    return problem(status_of(exc), exc.detail, slug=exc.slug, title=exc.title, **extra)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_api(request):
        return _page_error(request, 422, "The request is not valid; go back and try again.")
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        errors.append({"field": ".".join(loc) or "body", "message": str(err.get("msg", ""))})
    return problem(
        422,
        "The request is not valid; correct the fields listed.",
        slug="validation-error",
        errors=errors,
    )


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if not _is_api(request):
        return _page_error(request, exc.status_code, detail)
    response = problem(exc.status_code, detail)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def _sign_in(request: Request, _exc: Exception) -> Response:
    return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)


def _is_busy(exc: Exception) -> bool:
    """SQLite's busy timeout ran out ("database is locked"), or no connection came in time."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def _database_error(request: Request, exc: Exception) -> Response:
    if not _is_busy(exc):
        return _unexpected(request, exc)
    log.warning("request gave up waiting for the database: %s", exc)
    if not _is_api(request):
        return _page_error(request, 503, BUSY)
    response = problem(503, BUSY, slug="busy")
    response.headers["Retry-After"] = "1"
    return response


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    if not _is_api(request):
        return _page_error(request, 500, "Something went wrong on our side; nothing was saved.")
    return problem(
        500,
        "Something went wrong on our side; nothing was saved. Try again, and report it if "
        "it happens again.",
    )


def install(app: FastAPI) -> None:
    from kontak.web.pages.common import SignInRequired

    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(KontakError, _kontak_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(Exception, _unexpected)
