"""Identity holds under concurrent writers: the database, not the application, decides."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2
from fastapi import FastAPI

from tests.factories import Member
from tests.server import running_server

# Twenty ways people write the same Indonesian mobile number.
WRITINGS = [
    "0812-3456-7890",
    "081234567890",
    "0812 3456 7890",
    "0812.3456.7890",
    "+62 812 3456 7890",
    "+62-812-3456-7890",
    "+6281234567890",
    "6281234567890",
    "62 812 3456 7890",
    "62-812-3456-7890",
    "81234567890",
    "812 3456 7890",
    "812-3456-7890",
    "81234567890.0",
    "+62 (0)812 3456 7890",
    "+62 (0)812-3456-7890",
    "(0812) 3456 7890",
    "(0812) 3456-7890",
    " 0812 34567890 ",
    "+62 8123 4567 890",
]


def test_twenty_concurrent_creates_of_one_phone_store_one_contact(
    app: FastAPI, admin: Member
) -> None:
    assert len(set(WRITINGS)) == 20
    barrier = threading.Barrier(len(WRITINGS))

    with running_server(app) as base:

        def create(i: int) -> int:
            with httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http:
                barrier.wait()
                body = {"name": f"Caller {i}", "phone": WRITINGS[i]}
                response = http.post("/api/v1/contacts", json=body)
                if response.status_code == 409:
                    assert response.json()["conflicts"][0]["field"] == "phone"
                return response.status_code

        with ThreadPoolExecutor(len(WRITINGS)) as pool:
            statuses = list(pool.map(create, range(len(WRITINGS))))

        with httpx2.Client(base_url=base, headers=admin.headers) as http:
            items = http.get("/api/v1/contacts", params={"limit": 200}).json()["items"]

    assert sorted(statuses) == [201] + [409] * 19
    assert len(items) == 1
    assert items[0]["phone"] == "+6281234567890"


def test_concurrent_creates_sharing_a_new_tag_make_one_tag(app: FastAPI, admin: Member) -> None:
    barrier = threading.Barrier(10)
    with running_server(app) as base:

        def create(i: int) -> int:
            with httpx2.Client(base_url=base, headers=admin.headers, timeout=60) as http:
                barrier.wait()
                body = {"name": f"C{i}", "phone": f"0812000000{i:02d}", "tags": ["Promo 11.11"]}
                return http.post("/api/v1/contacts", json=body).status_code

        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(create, range(10)))
        with httpx2.Client(base_url=base, headers=admin.headers) as http:
            tags = http.get("/api/v1/tags").json()

    assert statuses == [201] * 10
    assert [(t["name"], t["contact_count"]) for t in tags] == [("promo 11.11", 10)]
