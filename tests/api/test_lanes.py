"""The JSON API's trips to worker threads take turns in each server process's lanes
(kontak.web.deps.Lanes), through a real server: at most ``api_threads`` at once, and reads
never wait behind writes stuck on SQLite's one write turn."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine

from kontak.config import Settings
from kontak.contact import service
from kontak.web.app import create_app
from tests.conftest import count_contacts
from tests.factories import Member
from tests.server import running_server


def test_api_requests_run_at_most_api_threads_at_a_time(
    settings: Settings, engine: Engine, admin: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    running, most = [0], [0]
    real: Callable[..., Any] = service.list_contacts

    def listing(*args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.1)  # long enough for the other requests to arrive meanwhile
        with lock:
            running[0] -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "list_contacts", listing)
    app = create_app(settings.model_copy(update={"api_threads": 1}))
    try:
        with running_server(app) as base:

            def get(_: int) -> int:
                with httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http:
                    return http.get("/api/v1/contacts").status_code

            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(get, range(4)))
    finally:
        app.state.engine.dispose()
    assert statuses == [200] * 4
    assert most[0] == 1


def test_reads_answer_while_api_writes_wait_for_sqlites_write_turn(
    settings: Settings, engine: Engine, admin: Member
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer at a time")
    patient = settings.model_copy(update={"api_threads": 1, "sqlite_busy_timeout_s": 1.0})
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    app = create_app(patient)
    done: dict[str, float] = {}
    try:
        with running_server(app) as base:
            other.execute("BEGIN IMMEDIATE")  # another process mid-write (an import, say)

            def call(name: str) -> httpx2.Response:
                with httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http:
                    if name == "read":
                        time.sleep(0.2)  # the writes are queued by now
                        response = http.get("/api/v1/contacts")
                    else:
                        body = {"name": name, "phone": f"08123456789{name[-1]}"}
                        response = http.post("/api/v1/contacts", json=body)
                done[name] = time.monotonic()
                return response

            with ThreadPoolExecutor(4) as pool:
                names = ["write 1", "write 2", "write 3", "read"]
                responses = dict(zip(names, pool.map(call, names), strict=True))
            other.execute("ROLLBACK")
    finally:
        other.close()
        app.state.engine.dispose()
    assert responses["read"].status_code == 200
    assert done["read"] < min(done[n] for n in names if n != "read")
    for name in names[:3]:  # each gave up: on the write turn, or on the lane before it
        response = responses[name]
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "urn:kontak:problem:busy"
        assert response.headers["retry-after"] == "1"
    assert count_contacts(settings) == 0
