"""The JSON API's lanes (kontak.web.deps.Lanes): at most ``threads`` trips at once in each,
handed out in order of arrival; reads never queue behind writes; a write that waits too
long for its lane is the busy database's answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request

from kontak.web.deps import Lanes


def _request(method: str) -> Request:
    return Request({"type": "http", "method": method, "path": "/", "headers": []})


def _run(main: Callable[[], Awaitable[None]]) -> None:
    """``anyio.run(main)`` in a thread of its own: the browser tests' Playwright keeps an
    event loop running in pytest's thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, main).result()


class _Recorder:
    """Trips that record their order and how many ran at once, each held until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.order: list[str] = []
        self.gate = threading.Event()

    def trip(self, name: str) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(name)
        self.gate.wait(10)
        with self.lock:
            self.running -= 1
        return name


@pytest.mark.parametrize("method", ["GET", "POST"])  # a write takes a free thread at once
@pytest.mark.parametrize("threads", [1, 2])
def test_a_lane_runs_at_most_its_threads_in_order_of_arrival(threads: int, method: str) -> None:
    recorder = _Recorder()
    lanes = Lanes(threads, wait_s=30)
    answers: list[str] = []

    async def main() -> None:
        async def one(name: str) -> None:
            answers.append(await lanes.run(_request(method), recorder.trip, name))

        async with anyio.create_task_group() as tasks:
            for name in "abcdefgh":
                tasks.start_soon(one, name)
                await anyio.sleep(0.01)  # arrive in this order
            await anyio.sleep(0.2)
            assert recorder.order == list("abcdefgh"[:threads])  # the others wait their turn
            recorder.gate.set()

    _run(main)
    assert recorder.most == threads
    assert sorted(answers) == list("abcdefgh")
    if threads == 1:  # one at a time: the trips ran in the order the requests came
        assert recorder.order == list("abcdefgh")


def test_reads_go_on_while_the_writes_lane_is_full() -> None:
    recorder = _Recorder()
    lanes = Lanes(1, wait_s=30)
    finished: dict[str, float] = {}

    async def main() -> None:
        async def one(method: str, name: str) -> None:
            await lanes.run(_request(method), str if method == "GET" else recorder.trip, name)
            finished[name] = time.monotonic()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(one, "POST", "write 1")
            tasks.start_soon(one, "PATCH", "write 2")
            await anyio.sleep(0.05)
            tasks.start_soon(one, "GET", "read")
            await anyio.sleep(0.2)
            assert "read" in finished
            assert not {"write 1", "write 2"} & finished.keys()
            assert recorder.order == ["write 1"]
            recorder.gate.set()

    _run(main)
    assert recorder.order == ["write 1", "write 2"]


def test_a_write_that_waits_too_long_for_its_lane_gives_up_as_a_busy_database() -> None:
    recorder = _Recorder()
    lanes = Lanes(1, wait_s=0.2)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lanes.run, _request("POST"), recorder.trip, "holder")
            await anyio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(PoolTimeout, match="no write turn"):
                await lanes.run(_request("DELETE"), recorder.trip, "late")
            assert 0.15 < time.monotonic() - started < 5
            recorder.gate.set()
        # The lane is free again once its holder is done: nothing leaked.
        assert await lanes.run(_request("POST"), str, "next") == "next"

    _run(main)
    assert recorder.order == ["holder"]  # the late write never ran


def test_a_trip_cancelled_while_it_waits_never_runs() -> None:
    recorder = _Recorder()
    lanes = Lanes(1, wait_s=30)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lanes.run, _request("POST"), recorder.trip, "holder")
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.1):  # the caller goes away while the trip waits
                await lanes.run(_request("POST"), recorder.trip, "gone")
            recorder.gate.set()
        assert await lanes.run(_request("POST"), str, "next") == "next"

    _run(main)
    lanes.close()
    assert recorder.order == ["holder"]


def test_a_trip_runs_in_the_callers_context_and_raises_its_error() -> None:
    import contextvars

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    lanes = Lanes(2, wait_s=30)

    def fail() -> None:
        raise LookupError(who.get())

    async def main() -> None:
        who.set("caller")
        assert await lanes.run(_request("GET"), who.get) == "caller"
        with pytest.raises(LookupError, match="caller"):
            await lanes.run(_request("PATCH"), fail)

    _run(main)
    lanes.close()


def test_closed_lanes_stop_their_threads_and_start_again_when_used() -> None:
    lanes = Lanes(2, wait_s=30)

    def lane_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("kontak-api-")}

    async def main() -> None:
        assert await lanes.run(_request("GET"), str, "read") == "read"
        assert await lanes.run(_request("POST"), str, "write") == "write"

    before = lane_threads()
    _run(main)
    assert len(lane_threads() - before) == 4  # two a lane, started at the first trip
    lanes.close()
    deadline = time.monotonic() + 5
    while lane_threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lane_threads() - before == set()
    _run(main)  # used again (a new lifespan of the app): new threads
    lanes.close()
