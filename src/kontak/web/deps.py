"""Request dependencies: the request's transaction and who the request acts as."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
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
    the ``X-CSRF-Token`` header."""
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


def get_locale(request: Request) -> str:
    """The language of messages in API answers: from Accept-Language, English by default."""
    return negotiate(request.headers.get("accept-language"))


LocaleDep = Annotated[str, Depends(get_locale)]


def permission(perm: Permission) -> Callable[[Principal], Organization]:
    """A dependency that checks ``perm`` and hands the route the caller's organization."""

    def check(principal: PrincipalDep) -> Organization:
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
