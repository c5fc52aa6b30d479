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

import asyncio
import contextlib
import contextvars
import functools
import inspect
import queue
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

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
    again), as one that waited that long for the write turn does.

    Each lane is a queue and threads of its own rather than anyio's thread pool under a
    ``CapacityLimiter``: anyio's trip (its checkpoint, limiter, cancel scope, and for a
    write that waits, ``fail_after``) took ~18% of the interpreter's time of a create at 8
    connections, a trip here a tenth of that (docs/benchmarks.md, session 35)."""

    def __init__(self, threads: int, wait_s: float) -> None:
        self.reads = _Lane(threads, "reads", wait_s=None)
        self.writes = _Lane(threads, "writes", wait_s=wait_s)

    async def run(self, request: Request, func: Callable[..., T], *args: object) -> T:
        """``func(*args)`` in a worker thread, in ``request``'s lane."""
        lane = self.reads if request.method in _READ_METHODS else self.writes
        return await lane.run(func, args)

    def close(self) -> None:
        """Stop the threads once the trips queued before are done (they start again on
        the next trip)."""
        self.reads.close()
        self.writes.close()


class _Trip:
    """One call waiting for, or running in, a lane's thread."""

    __slots__ = ("_unclaimed", "args", "context", "func", "future", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        func: Callable[..., Any],
        args: tuple[object, ...],
    ) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.context = contextvars.copy_context()
        self.func = func
        self.args = args
        self._unclaimed = [True]

    def claim(self) -> bool:
        """True for the one caller that gets here first: the thread that would run the
        trip, or the loop that gives up on it (``list.pop`` is one step for the
        interpreter's lock, so the two never both win)."""
        try:
            return self._unclaimed.pop()
        except IndexError:
            return False

    def expire(self, wait_s: float, lane: str) -> None:
        """On the loop: the trip waited ``wait_s`` for a thread; it will not run."""
        if self.claim():
            self.future.set_exception(
                PoolTimeout(f"no {lane[:-1]} turn of the API in {wait_s:g} s")
            )

    def settle(self, result: object, error: BaseException | None) -> None:
        """On the loop: the thread's answer (dropped when the request was cancelled)."""
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _Lane:
    def __init__(self, threads: int, name: str, wait_s: float | None) -> None:
        self.size = threads
        self.name = name
        self.wait_s = wait_s
        self._trips: queue.SimpleQueue[_Trip | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._starting = threading.Lock()

    async def run(self, func: Callable[..., T], args: tuple[object, ...]) -> T:
        if len(self._threads) < self.size:
            self._start()
        trip = _Trip(asyncio.get_running_loop(), func, args)
        timer = (
            None
            if self.wait_s is None
            else trip.loop.call_later(self.wait_s, trip.expire, self.wait_s, self.name)
        )
        self._trips.put(trip)
        try:
            return await trip.future  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            # Not begun: it never will. Begun: it ends in its thread, unanswered.
            trip.claim()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        with self._starting:
            for _ in self._threads:
                self._trips.put(None)
            self._threads = []

    def _start(self) -> None:
        with self._starting:
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work,
                    name=f"kontak-api-{self.name}-{len(self._threads) + 1}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while (trip := self._trips.get()) is not None:
            if not trip.claim():
                continue  # given up while it waited
            try:
                result = trip.context.run(trip.func, *trip.args)
            except BaseException as error:  # handed to the request
                answer: tuple[object, BaseException | None] = (None, error)
            else:
                answer = (result, None)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                trip.loop.call_soon_threadsafe(trip.settle, *answer)
            del trip, answer


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
