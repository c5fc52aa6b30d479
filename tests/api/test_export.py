"""Export pages through the contacts in batches; every contact comes out once, newest
first, with its own tags and social accounts, whatever the batch size."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from kontak.contact import export


@pytest.mark.parametrize("batch", [3, 7, 5000])
def test_export_pages_keep_every_contact_with_its_own_links(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(export, "BATCH", batch)
    for i in range(7):
        created = api.post(
            "/api/v1/contacts",
            json={
                "name": f"Kontak {i}",
                "phone": f"08123456{i:04d}",
                "tags": [f"t{i}", "semua"],
                "social_accounts": [
                    {"platform": "tiktok", "handle": f"z{i}"},
                    {"platform": "instagram", "handle": f"k{i}"},
                ],
            },
        )
        assert created.status_code == 201, created.text
    api.post("/api/v1/contacts", json={"name": "Tanpa Tag", "email": "tanpa@contoh.id"})
    response = api.get("/api/v1/contacts/export", params={"format": "csv"})
    assert response.status_code == 200
    table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["name"] for r in table] == ["Tanpa Tag", *(f"Kontak {i}" for i in range(6, -1, -1))]
    assert table[0]["tags"] == ""
    assert table[0]["instagram"] == ""
    for row in table[1:]:
        n = row["name"].split()[1]
        assert row["tags"] == f"semua, t{n}"
        assert row["instagram"] == f"k{n}"
        assert row["tiktok"] == f"z{n}"
        assert row["phone"] == f"'+628123456{int(n):04d}"

    # Filtered, the pages are no longer runs of neighbours: links are fetched by id.
    tagged = api.get("/api/v1/contacts/export", params={"format": "csv", "tag": "semua"})
    rows = list(csv.DictReader(io.StringIO(tagged.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == [f"Kontak {i}" for i in range(6, -1, -1)]
    assert [r["instagram"] for r in rows] == [f"k{i}" for i in range(6, -1, -1)]
