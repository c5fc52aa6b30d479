"""Request dependencies: the request's transaction and who the request acts as."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from kontak.account import service as account_service
from kontak.account.roles import Permission, require
from kontak.account.service import Principal
from kontak.db.models import Organization
from kontak.db.session import session_scope
from kontak.errors import Forbidden, Unauthorized
from kontak.web import session as web_session
from kontak.web.i18n import negotiate

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's one transaction: committed when the route returns, else rolled back."""
    write = request.method not in _READ_METHODS
    with session_scope(request.app.state.sessionmaker, write=write) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is a failed request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """A bearer token, or (for the pages' own calls) the session cookie plus, on writes,
    the ``X-CSRF-Token`` header.

    On writes the look-up runs in a read session of its own and its objects join the
    request's session without a query: the request's write turn (SQLite: one writer at a
    time) starts only with the route's own statements, not with the sign-in's."""
    if request.method in _READ_METHODS:
        return _authenticate(request, session)
    with session_scope(request.app.state.sessionmaker) as reading:
        principal = _authenticate(request, reading)
    return Principal(
        user=session.merge(principal.user, load=False),
        organization=session.merge(principal.organization, load=False),
    )


def _authenticate(request: Request, session: Session) -> Principal:
    header = request.headers.get("authorization", "")
    if not header:
        browser = web_session.read(request)
        if browser is not None:
            if request.method not in _READ_METHODS and not secrets.compare_digest(
                request.headers.get("x-csrf-token", ""), browser.csrf
            ):
                raise Forbidden("The page is out of date (CSRF check failed); reload it.")
            return account_service.principal_for_user(session, browser.user_id)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send an API token as 'Authorization: Bearer <token>'; create one with "
            "`kontak token create EMAIL`."
        )
    return account_service.authenticate_token(session, token)


PrincipalDep = Annotated[Principal, Depends(get_principal, scope="function")]


async def get_locale(request: Request) -> str:
    """The language of messages in API answers: from Accept-Language, English by default.
    (Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` in a worker
    thread, and each such hop cost ~0.2 ms a request.)"""
    return negotiate(request.headers.get("accept-language"))


LocaleDep = Annotated[str, Depends(get_locale)]


def permission(perm: Permission) -> Callable[[Principal], Awaitable[Organization]]:
    """A dependency that checks ``perm`` and hands the route the caller's organization."""

    async def check(principal: PrincipalDep) -> Organization:  # no I/O: no thread hop
        require(principal.role, perm)
        return principal.organization

    return check


def _org(perm: Permission) -> object:
    return Depends(permission(perm), scope="function")


ContactReader = Annotated[Organization, _org(Permission.CONTACT_READ)]
ContactWriter = Annotated[Organization, _org(Permission.CONTACT_WRITE)]
ContactDeleter = Annotated[Organization, _org(Permission.CONTACT_DELETE)]
TagWriter = Annotated[Organization, _org(Permission.TAG_WRITE)]
CustomFieldAdmin = Annotated[Organization, _org(Permission.CUSTOM_FIELD_WRITE)]
Importer = Annotated[Organization, _org(Permission.IMPORT)]
Exporter = Annotated[Organization, _org(Permission.EXPORT)]
