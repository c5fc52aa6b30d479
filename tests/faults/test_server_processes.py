"""`kontak serve --processes 2`: two server processes on one database, through HTTP. Every
create from many clients at once goes through (SQLite: the writers of both processes queue
on one lock file), a phone raced by every client is created once, and the shared socket
gives connections TCP_NODELAY."""

from __future__ import annotations

import socket
import threading

import httpx2
import pytest

from kontak.cli.main import _listening_socket
from kontak.config import Settings
from tests.conftest import count_contacts
from tests.factories import Member
from tests.faults.test_import_faults import server
from tests.server import free_port

pytestmark = pytest.mark.slow


def test_two_processes_create_every_contact_once(settings: Settings, admin: Member) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def client(me: int) -> None:
        with httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http:
            for n in range(15):
                body = {"name": f"Klien {me} {n}", "phone": f"0812{me:02d}{n:06d}"}
                created = http.post("/api/v1/contacts", json=body)
                raced = http.post(
                    "/api/v1/contacts", json={"name": "Rebutan", "phone": f"08130000{n:04d}"}
                )
                with lock:
                    results.extend([created.status_code, raced.status_code])

    with server(settings, processes=2) as (_process, base):
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(set(results)) == [201, 409], results
    assert results.count(201) == 8 * 15 + 15  # each client's own, and each raced phone once
    assert count_contacts(settings) == 8 * 15 + 15


def test_the_shared_socket_gives_connections_tcp_nodelay() -> None:
    # asyncio sets TCP_NODELAY only on connections whose listener says IPPROTO_TCP; without
    # it every keep-alive request waited ~40 ms for a delayed ACK (uvicorn issue 3149).
    listener = _listening_socket("127.0.0.1", free_port())
    try:
        assert listener.proto == socket.IPPROTO_TCP
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP
    finally:
        listener.close()
