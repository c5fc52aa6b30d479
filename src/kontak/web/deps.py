"""Request dependencies: the request's transaction and who the request acts as.

The JSON API's routes take their transaction from :func:`transaction` under
:func:`one_trip` instead of from ``SessionDep``: FastAPI sends each sync dependency, a
sync route and the validation of a sync route's answer to a worker thread of their own,
five trips a create (~1 ms of its CPU; docs/benchmarks.md, session 8). Under ``one_trip``
a request takes two: the sign-in (a dependency, so that a request without a valid token
is refused before its body is read) and the route with its transaction and commit.

Both trips take a turn in the process's :class:`Lanes`: a few threads for reads and as
many for writes, the requests beyond them waiting in order of arrival. Forty threads at
once (anyio's default) handed the interpreter's lock around unfairly: at 32 concurrent
creates the slowest 1% took ~2x as long as with two threads (docs/benchmarks.md,
session 32)."""

from __future__ import annotations

import functools
import inspect
import math
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.exc import TimeoutError as PoolTimeout
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
P = ParamSpec("P")
T = TypeVar("T")


def get_session(request: Request) -> Iterator[Session]:
    """The request's one transaction: committed when the route returns, else rolled back."""
    write = request.method not in _READ_METHODS
    with session_scope(request.app.state.sessionmaker, write=write) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is a failed request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class Lanes:
    """The JSON API's turns at a worker thread in one server process: ``threads`` for
    reads (GET, HEAD, OPTIONS) and as many for writes, handed out in order of arrival.

    Writes have their own lane because on SQLite they can wait long for the one write
    turn (an import holds it to its commit): reads go on meanwhile. A write that waits
    ``wait_s`` for its lane gets the answer of a database that stayed busy (503, try
    again), as one that waited that long for the write turn does."""

    def __init__(self, threads: int, wait_s: float) -> None:
        self.reads = anyio.CapacityLimiter(threads)
        self.writes = anyio.CapacityLimiter(threads)
        self.wait_s = wait_s
        self._admitted = anyio.CapacityLimiter(math.inf)  # a write past its lane's wait

    async def run(self, request: Request, func: Callable[..., T], *args: object) -> T:
        """``func(*args)`` in a worker thread, in ``request``'s lane."""
        if request.method in _READ_METHODS:
            return await anyio.to_thread.run_sync(func, *args, limiter=self.reads)
        try:
            self.writes.acquire_nowait()  # a free thread: no timer to set (~3% of a create)
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(self.wait_s):
                    await self.writes.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no write turn of the API in {self.wait_s:g} s") from None
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._admitted)
        finally:
            self.writes.release()


def one_trip(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run in one trip to a worker thread, in the request's lane of
    :class:`Lanes`, its answer validated on the event loop (see the module doc). The
    route takes ``request`` and its transaction from :func:`transaction`."""

    @functools.wraps(route)
    async def endpoint(*args: P.args, **kwargs: P.kwargs) -> T:
        request = kwargs["request"]
        assert isinstance(request, Request), "a one_trip route takes request: Request"
        return await request.app.state.lanes.run(request, functools.partial(route, *args, **kwargs))  # type: ignore[no-any-return]

    return _with_signature_of(route, endpoint)


def long_trip(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """:func:`one_trip` for a route that builds a file (a big import's report: seconds),
    outside the :class:`Lanes`: it never holds up the short requests queued there."""

    @functools.wraps(route)
    async def endpoint(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(route, *args, **kwargs))

    return _with_signature_of(route, endpoint)


def _with_signature_of(
    route: Callable[P, T], endpoint: Callable[P, Awaitable[T]]
) -> Callable[P, Awaitable[T]]:
    # FastAPI reads the parameters from here; evaluated, since the wrapper's module is not
    # the route's (``from __future__ import annotations`` leaves them as strings).
    endpoint.__signature__ = inspect.signature(route, eval_str=True)  # type: ignore[attr-defined]
    return endpoint


@contextmanager
def transaction(request: Request, org: Organization) -> Iterator[tuple[Session, Organization]]:
    """The request's one transaction, committed when the block ends without an error, and
    the organization of its sign-in, detached: the routes read its columns (its id, its
    region) and never change it, so it is not joined to the session."""
    write = request.method not in _READ_METHODS
    with session_scope(request.app.state.sessionmaker, write=write) as session:
        yield session, org


async def get_principal(request: Request) -> Principal:
    """The caller of an API request (see :func:`_principal`), looked up in a worker thread
    in the request's lane."""
    return await request.app.state.lanes.run(request, _principal, request)  # type: ignore[no-any-return]


def _principal(request: Request) -> Principal:
    """A bearer token, or (for the pages' own calls) the session cookie plus, on writes,
    the ``X-CSRF-Token`` header.

    The look-up reads outside the route's transaction, and the route takes the principal's
    organization as it is (:func:`transaction`): on writes the request's write turn (SQLite:
    one writer at a time) starts only with the route's own statements. A token's look-up is
    one statement on a connection of its own (``single_read``)."""
    header = request.headers.get("authorization", "")
    if not header:
        browser = web_session.read(request)
        if browser is not None:
            if request.method not in _READ_METHODS and not secrets.compare_digest(
                request.headers.get("x-csrf-token", ""), browser.csrf
            ):
                raise Forbidden("The page is out of date (CSRF check failed); reload it.")
            with session_scope(request.app.state.sessionmaker) as reading:
                return account_service.principal_for_user(reading, browser.user_id)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send an API token as 'Authorization: Bearer <token>'; create one with "
            "`kontak token create EMAIL`."
        )
    return account_service.authenticate_token(request.app.state.engine, token)


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
