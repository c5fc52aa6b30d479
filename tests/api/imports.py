"""Helpers for import tests through the HTTP API."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

TERMINAL = {"completed", "rejected", "failed"}


def upload(
    client: TestClient, data: bytes, name: str = "contacts.csv", **form: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/imports",
        files={"file": (name, data)},
        data={k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()},
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/imports/{job_id}").json()
        if job["status"] in TERMINAL:
            return dict(job)
        if time.monotonic() > deadline:
            raise AssertionError(f"import {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.05)


def run_import(
    client: TestClient, data: bytes, name: str = "contacts.csv", **form: Any
) -> dict[str, Any]:
    return wait(client, upload(client, data, name, **form)["id"])
