"""Export pages through the contacts in batches; every contact comes out once, newest
first, with its own tags and social accounts, whatever the batch size."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kontak.contact import export, repository
from kontak.contact.repository import ContactFilter
from kontak.db.models import Organization
from kontak.db.session import session_scope
from kontak.files import xlsx_sheet


@pytest.mark.parametrize("batch", [3, 7, 5000])
def test_export_pages_keep_every_contact_with_its_own_links(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(export, "BATCH", batch)
    monkeypatch.setattr(export._TagCells, "LIMIT", 3)  # its maps start over on the way
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


def test_a_tag_made_while_an_export_runs_is_named(
    api: TestClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export names tags from a map it reads once; a tag it has not seen yet (made
    since the export began, seen by a later page where the engine reads committed rows
    per statement) makes it read the map again instead of failing."""
    monkeypatch.setattr(export, "BATCH", 1)
    for i in range(2):
        created = api.post(
            "/api/v1/contacts", json={"name": f"K{i}", "email": f"k{i}@contoh.id", "tags": ["lama"]}
        )
        assert created.status_code == 201, created.text
    oldest = api.get("/api/v1/contacts").json()["items"][-1]["id"]
    with session_scope(sessions) as session:
        org = session.scalars(select(Organization).where(Organization.slug == "acme")).one()
        header, pages = export.export_pages(session, org, ContactFilter())
        first = next(pages)
        patched = api.patch(f"/api/v1/contacts/{oldest}", json={"tags": ["lama", "baru"]})
        assert patched.status_code == 200, patched.text
        rest = list(pages)
    tags = [page[header.index("tags")][0] for page in [first, *rest]]
    # SQLite reads the export's one snapshot; PostgreSQL each page as committed.
    assert tags in (["lama", "lama"], ["lama", "baru, lama"])
    if sessions.kw["bind"].dialect.name == "postgresql":
        assert tags == ["lama", "baru, lama"]


def test_an_xlsx_export_that_fails_leaves_no_file(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workbook is made in a temporary file before it is sent; a failure on the way
    (the database gone, the disk full) removes it."""
    from kontak.web.api import contacts as contacts_api

    made: list[Path] = []

    def failing(path: Path, *args: object, **kwargs: object) -> None:
        made.append(path)
        path.write_bytes(b"half a workbook")
        raise OSError("No space left on device")

    monkeypatch.setattr(contacts_api, "write_xlsx", failing)
    created = api.post("/api/v1/contacts", json={"name": "A", "email": "a@contoh.id"})
    assert created.status_code == 201
    with pytest.raises(OSError, match="No space left"):
        api.get("/api/v1/contacts/export", params={"format": "xlsx"})
    assert len(made) == 1
    assert not made[0].exists()


def test_an_export_reads_through_a_small_page_cache_and_gives_it_back(
    api: TestClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the export's connection caches few pages while it reads every contact once
    (it filled the connection's 64 MB: peak PSS of a 1M export 170 -> 106 MB), and gets
    its own cache size back, also when the reader stops early (a client gone)."""
    if sessions.kw["bind"].dialect.name != "sqlite":
        pytest.skip("SQLite's page cache")
    monkeypatch.setattr(export, "BATCH", 1)
    for i in range(3):
        created = api.post("/api/v1/contacts", json={"name": f"K{i}", "email": f"k{i}@contoh.id"})
        assert created.status_code == 201, created.text
    with session_scope(sessions) as session:
        org = session.scalars(select(Organization).where(Organization.slug == "acme")).one()

        def cache() -> int:
            return int(session.connection().exec_driver_sql("PRAGMA main.cache_size").scalar_one())

        own = cache()
        _, pages = export.export_pages(session, org, ContactFilter())
        next(pages)
        assert cache() == -repository.EXPORT_CACHE_KIB
        pages.close()  # stopped after one page of three
        assert cache() == own
        _, pages = export.export_pages(session, org, ContactFilter())
        assert len(list(pages)) == 3
        assert cache() == own


def test_more_contacts_than_an_xlsx_sheet_holds_is_a_clear_error(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sheet holds 1,048,575 rows under its header; XlsxWriter left the rest out without
    a word. Now the export says so and what to do (here with a sheet of two rows)."""
    monkeypatch.setattr(xlsx_sheet, "MAX_ROW", 2)
    for i in range(3):
        created = api.post("/api/v1/contacts", json={"name": f"K{i}", "email": f"k{i}@contoh.id"})
        assert created.status_code == 201, created.text
    refused = api.get("/api/v1/contacts/export", params={"format": "xlsx"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Export as CSV" in refused.json()["detail"]
    fewer = api.get("/api/v1/contacts/export", params={"format": "xlsx", "q": "K1"})
    assert fewer.status_code == 200
    exported = api.get("/api/v1/contacts/export", params={"format": "csv"})
    assert len(exported.content.decode("utf-8-sig").splitlines()) == 4
