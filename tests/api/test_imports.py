"""The import flow of the reference through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kontak.config import Settings
from kontak.import_job import bulk
from kontak.import_job.staging import Stage
from tests.api.imports import run_import, upload, wait
from tests.factories import Member, contact_payload, make_member
from tests.files import TEMPLATE, csv_bytes, far_corner_xlsx, strip_dimension, xlsx_bytes

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"


class _AnyId:
    """Equal to any 26-character id."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) == 26

    def __repr__(self) -> str:
        return "ANY_ID"


ANY_ID = _AnyId()


def person(i: int) -> list[str]:
    return [
        f"Pelanggan {i}",
        f"pelanggan{i}@contoh.co.id",
        f"0812{i:08d}",
        "whatsapp" if i % 2 else "email",
        f"Jl. Mawar No. {i}, Jakarta",
        "vip, pelanggan" if i % 3 == 0 else "pelanggan",
        "",
        f"@ig_pelanggan{i}" if i % 5 == 0 else "",
        "",
        "",
        "",
        "",
        "",
    ]


def contacts(api: TestClient) -> list[dict[str, object]]:
    return list(api.get("/api/v1/contacts", params={"limit": 200}).json()["items"])


def test_reference_scenario_template_reject_fix_reupload(api: TestClient) -> None:
    template = api.get("/api/v1/imports/template", params={"format": "csv"})
    assert template.status_code == 200
    assert template.headers["content-type"].startswith("text/csv")
    header = next(csv.reader(io.StringIO(template.content.decode("utf-8-sig"))))
    assert header == TEMPLATE

    rows = [person(i) for i in range(1, 51)]
    bad = [list(r) for r in rows]
    bad[4][2] = "+62 812 0000 0002"  # row 6 carries row 3's phone, written differently
    job = run_import(api, csv_bytes([header, *bad]))
    assert job["status"] == "rejected"
    assert job["created"] == 0
    assert job["duplicate_count"] == 2
    assert "upload it again" in job["message"]
    assert contacts(api) == []

    dupes = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()
    assert dupes["existing"] == []
    assert len(dupes["in_file"]) == 1
    group = dupes["in_file"][0]
    assert group["key"] == "phone"
    assert group["value"] == "+6281200000002"
    assert [r["row"] for r in group["rows"]] == [3, 6]
    assert group["rows"][1]["cells"]["phone"] == "+62 812 0000 0002"
    assert group["rows"][0]["cells"]["name"] == "Pelanggan 2"

    fixed = run_import(api, csv_bytes([header, *rows]))
    assert fixed["status"] == "completed", fixed
    assert fixed["created"] == 50
    assert fixed["rows_total"] == fixed["rows_processed"] == 50
    assert fixed["finished_at"]
    stored = contacts(api)
    assert len(stored) == 50
    budi = next(c for c in stored if c["name"] == "Pelanggan 15")
    assert budi["phone"] == "+6281200000015"
    assert budi["tags"] == ["pelanggan", "vip"]
    assert budi["social_accounts"] == [{"platform": "instagram", "handle": "ig_pelanggan15"}]
    assert budi["source"] == f"import:{fixed['id']}"
    tags = {t["name"]: t["contact_count"] for t in api.get("/api/v1/tags").json()}
    assert tags == {"pelanggan": 50, "vip": 16}


def test_xlsx_template_has_text_phone_dropdown_and_instructions(
    api: TestClient, tmp_path: Path
) -> None:
    api.post(
        "/api/v1/custom-fields",
        json={"key": "tier", "type": "select", "options": ["Gold", "Silver"]},
    )
    response = api.get("/api/v1/imports/template", params={"format": "xlsx"})
    assert response.status_code == 200
    path = tmp_path / "t.xlsx"
    path.write_bytes(response.content)
    book = CalamineWorkbook.from_path(str(path))
    assert book.sheet_names[:2] == ["Contacts", "Instructions"]
    assert book.get_sheet_by_index(0).to_python()[0] == [*TEMPLATE, "tier"]
    guide = [row[0] for row in book.get_sheet_by_index(1).to_python()]
    assert "phone" in guide
    assert "tier" in guide
    import zipfile

    sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert 'type="list"' in sheet
    assert "whatsapp" in sheet
    styles = zipfile.ZipFile(path).read("xl/styles.xml").decode()
    assert 'formatCode="@"' in styles or 'numFmtId="49"' in styles

    filled = xlsx_bytes(
        [
            [*TEMPLATE, "tier"],
            ["Budi", "", 81234567890, "WhatsApp", "", "", "", "", "", "", "", "", "", "gold"],
        ]
    )
    job = run_import(api, filled, "filled.xlsx")
    assert job["status"] == "completed", job
    assert job["format"] == "xlsx"
    stored = contacts(api)[0]
    assert stored["phone"] == "+6281234567890"
    assert stored["custom_fields"] == {"tier": "Gold"}


def test_a_workbooks_phone_numbers_are_checked_and_reported_as_the_user_typed_them(
    api: TestClient,
) -> None:
    # Excel keeps a phone typed as digits as a number (the leading 0 dropped). Such rows
    # take the import's fast path: the same contact, and the report shows the cell as
    # Excel shows it (81234567890, not 81234567890.0).
    header = ["name", "email", "phone", "channel", "tags"]
    twins = xlsx_bytes(
        [
            header,
            ["Budi", "budi@contoh.id", 81234567890, "wa", "vip"],
            ["Cici", "cici@contoh.id", 6281300000001, "email", ""],
            ["Budi lagi", "", "0812-3456-7890", "", ""],
        ]
    )
    job = run_import(api, twins, "twins.xlsx")
    assert job["status"] == "rejected", job
    group = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"][0]
    assert (group["key"], group["value"]) == ("phone", "+6281234567890")
    assert [(r["row"], r["cells"]["phone"]) for r in group["rows"]] == [
        (2, "81234567890"),
        (4, "0812-3456-7890"),
    ]

    fixed = xlsx_bytes(
        [
            header,
            ["Budi", "budi@contoh.id", 81234567890, "wa", "vip"],
            ["Cici", "cici@contoh.id", 6281300000001, "email", ""],
        ]
    )
    job = run_import(api, fixed, "fixed.xlsx")
    assert job["status"] == "completed", job
    stored = {c["name"]: c for c in contacts(api)}
    assert (stored["Budi"]["phone"], stored["Budi"]["channel"]) == ("+6281234567890", "whatsapp")
    assert stored["Budi"]["tags"] == ["vip"]
    assert stored["Cici"]["phone"] == "+6281300000001"


def test_invalid_rows_are_reported_with_spreadsheet_rows_and_columns(api: TestClient) -> None:
    data = csv_bytes(
        [
            ["Nama", "No HP", "Email", "Kanal"],
            ["Budi", "0812-3456-7890", "budi@contoh.id", "wa"],
            ["", "0813-1111-2222", "", ""],
            ["Cici", "6.28123E+12", "cici@", "merpati"],
            ["Dedi", "", "", ""],
        ]
    )
    job = run_import(api, data)
    assert job["status"] == "rejected"
    errors = api.get(f"/api/v1/imports/{job['id']}/errors").json()
    found = {(e["row"], e["column"]) for e in errors}
    assert found == {(3, "Nama"), (4, "No HP"), (4, "Email"), (4, "Kanal"), (5, "No HP")}
    phone = next(e for e in errors if e["row"] == 4 and e["column"] == "No HP")
    assert phone["value"] == "6.28123E+12"
    assert "Text" in phone["message"]
    assert job["error_count"] == len(errors)
    assert contacts(api) == []


def test_report_lists_problem_rows_and_reimports_when_fixed(
    api: TestClient, tmp_path: Path
) -> None:
    data = csv_bytes(
        [["name", "phone"], ["Budi", "0812-3456-7890"], ["Ani", "081234567890"], ["Cici", "0813"]]
    )
    job = run_import(api, data)
    report = api.get(f"/api/v1/imports/{job['id']}/report", params={"format": "csv"})
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["problem", "name", "phone"]
    assert [r[1] for r in rows[1:]] == ["Budi", "Ani", "Cici"]
    assert rows[1][0].startswith("row 2: phone +6281234567890 is also in row(s) 3")
    assert "row 4" in rows[3][0]

    xlsx = api.get(f"/api/v1/imports/{job['id']}/report", params={"format": "xlsx"})
    path = tmp_path / "r.xlsx"
    path.write_bytes(xlsx.content)
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert sheet[0] == ["problem", "name", "phone"]
    assert len(sheet) == 4

    fixed = [
        rows[0],
        ["", "Budi", "0812-3456-7890"],
        ["", "Ani", "0812-9999-0000"],
        ["", "Cici", "0813-5555-6666"],
    ]
    again = run_import(api, csv_bytes(fixed))
    assert again["status"] == "completed", again
    assert again["created"] == 3


def test_report_notes_each_row_once_errors_then_groups_then_matches(api: TestClient) -> None:
    """The report merges the three kinds of problem, each read in row order (since session
    23, not gathered in memory): a row's notes in that order, rows in file order."""
    eko = api.post(
        "/api/v1/contacts",
        json={"name": "Eko", "email": "eko@contoh.id", "phone": "0811-1111-1111"},
    ).json()
    data = csv_bytes(
        [
            ["name", "email", "phone"],
            ["Ani", "ani@contoh.id", "0813"],
            ["Eko", "eko@contoh.id", "0812-2222-3333"],
            ["Budi", "", "0814-4444-5555"],
            ["Cici", "bad@", "0812-2222-3333"],
        ]
    )
    job = run_import(api, data)
    assert job["status"] == "rejected"
    report = api.get(f"/api/v1/imports/{job['id']}/report", params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["Ani", "Eko", "Cici"]
    ani, eko_row, cici = (r[0] for r in rows[1:])
    assert ani.startswith("row 2: phone '0813': ")
    assert eko_row == (
        "row 3: phone +6281222223333 is also in row(s) 5; "
        f"email eko@contoh.id belongs to existing contact {eko['id']}"
    )
    assert cici.startswith("row 5: email 'bad@': ")
    assert cici.endswith("; phone +6281222223333 is also in row(s) 3")
    assert cici.count("; ") == 1


def test_existing_contacts_reject_skip_and_update(api: TestClient) -> None:
    kept = api.post("/api/v1/contacts", json=contact_payload(tags=["old"])).json()
    data = csv_bytes(
        [
            ["name", "email", "phone", "address", "tags", "instagram"],
            ["Budi Baru", "", "0812-3456-7890", "", "new", "budi_ig"],
            ["Ani", "ani@contoh.id", "0813-1111-2222", "", "", ""],
        ]
    )
    rejected = run_import(api, data)
    assert rejected["status"] == "rejected"
    assert rejected["duplicate_count"] == 1
    dupes = api.get(f"/api/v1/imports/{rejected['id']}/duplicates").json()
    assert dupes["existing"] == [
        {"row": 2, "key": "phone", "value": "+6281234567890", "contact_id": kept["id"]}
    ]
    assert len(contacts(api)) == 1

    dry = run_import(api, data, on_existing="skip", dry_run=True)
    assert dry["status"] == "completed"
    assert (dry["created"], dry["skipped"]) == (1, 1)
    assert "nothing was written" in dry["message"]
    assert len(contacts(api)) == 1

    skipped = run_import(api, data, on_existing="skip")
    assert (skipped["status"], skipped["created"], skipped["skipped"]) == ("completed", 1, 1)
    assert api.get(f"/api/v1/contacts/{kept['id']}").json()["name"] == "Budi Santoso"

    updated = run_import(api, data, on_existing="update")
    assert (updated["status"], updated["created"], updated["updated"]) == ("completed", 0, 2)
    # Ani, created by the skip, is as in the file
    assert (
        updated["message"] == "Imported: 0 contacts created, 2 updated (1 already as in the file)."
    )
    after = api.get(f"/api/v1/contacts/{kept['id']}").json()
    assert after["name"] == "Budi Baru"
    assert after["email"] == kept["email"]  # blank cell leaves the value
    assert after["address"] == kept["address"]
    assert after["tags"] == ["new", "old"]
    assert after["social_accounts"] == [{"platform": "instagram", "handle": "budi_ig"}]


def test_update_mode_applies_filled_cells_merges_fields_and_adds_accounts_and_tags(
    api: TestClient,
) -> None:
    """on_existing=update: the contacts one row each matches are updated set-based (since
    session 23), a contact that two rows match row by row in file order; both the same
    way as a single edit: filled cells replace, blank cells leave, custom fields merge,
    accounts and tags are added, and searches find the new values."""
    for body in (
        {"key": "tier", "type": "text"},
        {"key": "orders", "type": "number"},
        {"key": "note", "type": "text"},
    ):
        assert api.post("/api/v1/custom-fields", json=body).status_code == 201
    ani = api.post(
        "/api/v1/contacts",
        json={
            "name": "Ani",
            "email": "ani@contoh.id",
            "phone": "0813-1111-2222",
            "channel": "whatsapp",
            "address": "Jl. Lama 1",
            "tags": ["old", "vip"],
            "custom_fields": {"tier": "Gold", "orders": 3},
            "social_accounts": [{"platform": "instagram", "handle": "ani_ig"}],
        },
    ).json()
    budi = api.post("/api/v1/contacts", json={"name": "Budi", "phone": "0812-3456-7890"}).json()
    cici = api.post(
        "/api/v1/contacts",
        json={"name": "Cici", "email": "cici@contoh.id", "phone": "0815-0000-1111"},
    ).json()
    header = ["name", "email", "phone", "address", "tags", "instagram", "tiktok"]
    data = csv_bytes(
        [
            [*header, "tier", "orders", "note"],
            [
                "Ani",
                "ANI@contoh.id",
                "",
                "Jl. Baru 2",
                "new, VIP",
                "ani_ig",
                "ani_tt",
                "",
                "5",
                "hi",
            ],
            ["Budi Santoso", "budi@contoh.id", "0812-3456-7890", "", "", "", "", "", "", ""],
            ["Cici Satu", "cici@contoh.id", "", "Jl. Satu", "satu", "", "", "", "", ""],
            ["Cici Dua", "", "0815-0000-1111", "Jl. Dua", "dua", "", "", "", "", ""],
            ["Dedi", "", "0816-2222-3333", "", "", "", "", "", "", ""],
        ]
    )
    job = run_import(api, data, on_existing="update")
    assert (job["status"], job["created"], job["updated"]) == ("completed", 1, 4), (
        job,
        api.get(f"/api/v1/imports/{job['id']}/errors").json(),
    )

    after = api.get(f"/api/v1/contacts/{ani['id']}").json()
    assert (after["name"], after["email"], after["phone"]) == (
        "Ani",
        "ANI@contoh.id",  # a filled cell replaces the value, as written
        "+6281311112222",
    )
    assert (after["channel"], after["address"]) == ("whatsapp", "Jl. Baru 2")
    assert after["tags"] == ["new", "old", "vip"]
    assert after["social_accounts"] == [
        {"platform": "instagram", "handle": "ani_ig"},
        {"platform": "tiktok", "handle": "ani_tt"},
    ]
    assert after["custom_fields"] == {"tier": "Gold", "orders": 5, "note": "hi"}
    assert list(after["custom_fields"]) == ["tier", "orders", "note"]
    assert after["updated_at"] > ani["updated_at"]

    after = api.get(f"/api/v1/contacts/{budi['id']}").json()
    assert (after["name"], after["email"]) == ("Budi Santoso", "budi@contoh.id")
    after = api.get(f"/api/v1/contacts/{cici['id']}").json()
    assert (after["name"], after["email"], after["address"]) == (
        "Cici Dua",
        "cici@contoh.id",
        "Jl. Dua",
    )
    assert after["tags"] == ["dua", "satu"]

    def found(q: str) -> list[str]:
        items = api.get("/api/v1/contacts", params={"q": q}).json()["items"]
        return sorted(c["name"] for c in items)

    assert found("Santoso") == ["Budi Santoso"]
    assert found("budi@contoh.id") == ["Budi Santoso"]
    assert found("Cici Dua") == ["Cici Dua"]
    assert found("ani_tt") == ["Ani"]
    assert len(contacts(api)) == 4


@pytest.mark.parametrize("streamed", [True, False], ids=["chunks", "server-cursor"])
def test_postgres_finds_the_same_matches_by_either_way_of_reading_them(
    api: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    """PostgreSQL reads the matches with stored contacts in chunks as the server sends
    them (libpq 17 on, since session 24), or else through a server-side cursor; both
    record every match."""
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(bulk, "_streamed_matches", lambda: streamed)
    ani = api.post(
        "/api/v1/contacts",
        json={
            "name": "Ani",
            "email": "ani@contoh.id",
            "phone": "0813-1111-2222",
            "social_accounts": [{"platform": "instagram", "handle": "ani_ig"}],
        },
    ).json()
    budi = api.post("/api/v1/contacts", json={"name": "Budi", "phone": "0812-3456-7890"}).json()
    data = csv_bytes(
        [
            ["name", "email", "phone", "instagram"],
            ["Ani", "ANI@contoh.id", "0813 1111 2222", "@Ani_IG"],
            ["Cici", "", "0815-0000-1111", ""],
            ["Budi", "", "+62 812 3456 7890", ""],
        ]
    )
    job = run_import(api, data)
    assert (job["status"], job["duplicate_count"]) == ("rejected", 2)
    existing = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["existing"]
    assert existing == [
        {"row": 2, "key": "email", "value": "ani@contoh.id", "contact_id": ani["id"]},
        {"row": 2, "key": "instagram", "value": "ani_ig", "contact_id": ani["id"]},
        {"row": 2, "key": "phone", "value": "+6281311112222", "contact_id": ani["id"]},
        {"row": 4, "key": "phone", "value": "+6281234567890", "contact_id": budi["id"]},
    ]
    skipped = run_import(api, data, on_existing="skip")
    assert (skipped["status"], skipped["created"], skipped["skipped"]) == ("completed", 1, 2)


def test_update_mode_leaves_the_contacts_it_does_not_change_as_they_were(
    api: TestClient,
) -> None:
    """A matched contact whose row changes nothing keeps its updated_at (and its stored
    row: a file uploaded again is not a rewrite of every contact); one change of any kind
    (a value, a field, an account, a tag) gives it a new one. The job counts every
    matched contact as updated. Both the set-based update and the row-by-row one of a
    contact that two rows match (since session 24; before, every one got a new time)."""
    assert api.post("/api/v1/custom-fields", json={"key": "tier"}).status_code == 201
    people = ["Ani", "Budi", "Cici", "Dedi", "Eko", "Fajar", "Gita", "Hadi", "Indah"]
    stored = {}
    for n, name in enumerate(people):
        body = {
            "name": name,
            "email": f"{name.lower()}@contoh.id",
            "phone": f"0812-3456-70{n:02d}",
            "channel": "whatsapp",
            "address": f"Jl. {name} 1",
            "tags": ["vip"],
            "custom_fields": {"tier": "Gold"},
            "social_accounts": [{"platform": "instagram", "handle": f"{name.lower()}_ig"}],
        }
        created = api.post("/api/v1/contacts", json=body)
        assert created.status_code == 201, created.text
        stored[name] = created.json()

    def row(who: str, **changes: str) -> list[str]:
        contact = stored[who]
        cells = {
            "name": who,
            "email": contact["email"],
            "phone": contact["phone"],
            "channel": "whatsapp",
            "address": contact["address"],
            "tags": "VIP",
            "instagram": f"@{who.lower()}_ig",
            "tier": "Gold",
        }
        return list({**cells, **changes}.values())

    header = ["name", "email", "phone", "channel", "address", "tags", "instagram", "tier"]
    data = csv_bytes(
        [
            header,
            row("Ani"),  # as stored, written the way a user writes it
            row("Budi", channel="telegram"),
            row("Cici", address="Jl. Cici 2"),
            row("Dedi", tier="Silver"),
            row("Eko", instagram="eko_baru"),
            row("Fajar", tags="vip, baru"),
            row("Gita", name="Gita Ayu"),
            row("Hadi", email="", phone=""),  # only its account matches: no change
            # Indah matched by two rows, her email and her phone (updated row by row in
            # file order); neither changes her.
            row("Indah", phone="", instagram=""),
            row("Indah", email="", tags="", tier=""),
        ]
    )
    job = run_import(api, data, on_existing="update")
    assert (job["status"], job["created"], job["updated"]) == ("completed", 0, 10), job
    # Ani, Hadi and Indah's two rows changed nothing.
    assert job["message"] == "Imported: 0 contacts created, 10 updated (4 already as in the file)."

    def now(name: str) -> dict[str, Any]:
        return dict(api.get(f"/api/v1/contacts/{stored[name]['id']}").json())

    for name in ("Ani", "Hadi", "Indah"):
        assert now(name) == stored[name], name
    changed = {
        "Budi": ("channel", "telegram"),
        "Cici": ("address", "Jl. Cici 2"),
        "Dedi": ("custom_fields", {"tier": "Silver"}),
        "Eko": (
            "social_accounts",
            [
                {"platform": "instagram", "handle": "eko_baru"},
                {"platform": "instagram", "handle": "eko_ig"},
            ],
        ),
        "Fajar": ("tags", ["baru", "vip"]),
        "Gita": ("name", "Gita Ayu"),
    }
    for name, (field, value) in changed.items():
        after = now(name)
        assert after[field] == value, (name, after)
        assert after["updated_at"] > stored[name]["updated_at"], name

    # The same file again changes none of them.
    before = {name: now(name) for name in people}
    again = run_import(api, data, on_existing="update")
    assert (again["status"], again["updated"]) == ("completed", 10), again
    assert again["message"].endswith("10 updated (10 already as in the file).")
    assert {name: now(name) for name in people} == before


def test_row_matching_two_existing_contacts_rejects_in_every_mode(api: TestClient) -> None:
    one = api.post("/api/v1/contacts", json={"name": "A", "email": "a@contoh.id"}).json()
    two = api.post("/api/v1/contacts", json={"name": "B", "phone": "0813-1111-2222"}).json()
    data = csv_bytes([["name", "email", "phone"], ["AB", "a@contoh.id", "0813-1111-2222"]])
    for mode in ("reject", "skip", "update"):
        job = run_import(api, data, on_existing=mode)
        assert job["status"] == "rejected", mode
        errors = api.get(f"/api/v1/imports/{job['id']}/errors").json()
        assert len(errors) == 1
        assert one["id"] in errors[0]["message"]
        assert two["id"] in errors[0]["message"]


def test_every_kind_of_identity_is_matched_in_the_file_and_against_contacts(
    api: TestClient,
) -> None:
    kept = api.post(
        "/api/v1/contacts",
        json={
            "name": "Ada",
            "email": "Ada@Contoh.id",
            "phone": "0811-0000-0001",
            "social_accounts": [{"platform": "instagram", "handle": "Ada_IG"}],
        },
    ).json()
    data = csv_bytes(
        [
            ["name", "email", "phone", "instagram"],
            ["By email", "ADA@contoh.id", "", ""],
            ["By phone", "", "+62 811 0000 0001", ""],
            ["By handle", "", "0812-0000-0003", "@ada_ig"],
            ["Twin 1", "twin@contoh.id", "0812-0000-0004", "twin_ig"],
            ["Twin 2", "Twin@Contoh.id", "0812 0000 0004", "@Twin_IG"],
        ]
    )
    job = run_import(api, data)
    assert job["status"] == "rejected"
    found = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()
    assert found["existing"] == [
        {"row": 2, "key": "email", "value": kept["email"], "contact_id": kept["id"]},
        {"row": 3, "key": "phone", "value": kept["phone"], "contact_id": kept["id"]},
        {"row": 4, "key": "instagram", "value": "Ada_IG", "contact_id": kept["id"]},
    ]
    groups = [(g["key"], g["value"], [r["row"] for r in g["rows"]]) for g in found["in_file"]]
    assert sorted(groups) == [
        ("email", "twin@contoh.id", [5, 6]),
        ("instagram", "twin_ig", [5, 6]),
        ("phone", "+6281200000004", [5, 6]),
    ]
    assert job["duplicate_count"] == 5


def test_in_file_duplicates_reject_in_every_mode(api: TestClient) -> None:
    data = csv_bytes([["name", "email"], ["A", "Same@contoh.id"], ["B", "same@CONTOH.id"]])
    for mode in ("skip", "update"):
        job = run_import(api, data, on_existing=mode)
        assert job["status"] == "rejected"
        group = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"][0]
        assert (group["key"], [r["row"] for r in group["rows"]]) == ("email", [2, 3])


def test_the_pages_read_the_duplicate_groups_the_job_found(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner keeps the groups in the staging file: the report and the duplicates
    # pages no longer search a million rows again at every look (~1 s each).
    data = csv_bytes([["name", "email"], ["A", "sama@contoh.id"], ["B", "SAMA@contoh.id"]])
    job = run_import(api, data)
    assert job["status"] == "rejected"
    url = f"/api/v1/imports/{job['id']}"
    duplicates, report = api.get(f"{url}/duplicates").json(), api.get(f"{url}/report").content

    def searched_again(self: Stage) -> None:
        raise AssertionError("the duplicate groups were searched again")

    monkeypatch.setattr(Stage, "find_duplicate_groups", searched_again)
    assert api.get(f"{url}/duplicates").json() == duplicates
    assert api.get(f"{url}/report").content == report
    assert duplicates["in_file"][0]["key"] == "email"


def test_a_clean_file_is_written_without_searching_for_duplicates(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No row errors and no stored contact holding its keys: the unique indexes are the
    # duplicate check (a million rows: ~1 s less); the pages know there are none.
    def searched(self: Stage) -> None:
        raise AssertionError("the duplicate groups were searched")

    monkeypatch.setattr(Stage, "find_duplicate_groups", searched)
    job = run_import(api, csv_bytes([TEMPLATE, *(person(i) for i in range(1, 6))]))
    assert (job["status"], job["created"]) == ("completed", 5)
    assert api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"] == []


@pytest.mark.parametrize(
    ("column", "first", "second", "key"),
    [
        ("email", "Kembar@contoh.id", "kembar@CONTOH.id", "email"),
        ("phone", "0812-3456-7890", "+62 812 3456 7890", "phone"),
        ("instagram", "@kembar_ig", "Kembar_IG", "instagram"),
    ],
)
def test_a_duplicate_in_a_clean_file_is_found_when_the_index_refuses_it(
    api: TestClient, column: str, first: str, second: str, key: str
) -> None:
    reach = "email" if column == "phone" else "phone"
    own = {"email": "orang{}@contoh.id", "phone": "0811-0000-000{}"}[reach]
    rows = [["name", reach, column]]
    for i, value in enumerate([first, "", second], start=1):
        rows.append([f"Orang {i}", own.format(i), value])
    before = contacts(api)
    job = run_import(api, csv_bytes(rows))
    assert job["status"] == "rejected"
    found = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"]
    assert [(g["key"], [r["row"] for r in g["rows"]]) for g in found] == [(key, [2, 4])]
    assert contacts(api) == before  # nothing of the file was kept


def test_a_skipped_row_does_not_hide_its_twin_in_the_file(api: TestClient) -> None:
    # The stored contact's row is skipped, so no index would refuse its twin: the file's
    # duplicates are searched whenever a row matches a stored contact.
    api.post("/api/v1/contacts", json={"name": "Ada", "email": "ada@contoh.id"})
    data = csv_bytes([["name", "email"], ["Ada", "ada@contoh.id"], ["Ada lagi", "ADA@contoh.id"]])
    job = run_import(api, data, on_existing="skip")
    assert job["status"] == "rejected"
    found = api.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"]
    assert [(g["key"], [r["row"] for r in g["rows"]]) for g in found] == [("email", [2, 3])]


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"", "empty.csv", "empty"),
        (b"name,phone\r\n", "header.csv", "no contacts"),
        (b"name,phone\r\n,\r\n\r\n", "blank.csv", "no contacts"),
        (b"nama,gender\r\nBudi,m\r\n", "unknown.csv", "'gender'"),
        (b"%PDF-1.7\n", "doc.csv", "PDF"),
    ],
)
def test_unreadable_files_are_rejected_with_what_to_do(
    api: TestClient, data: bytes, name: str, says: str
) -> None:
    job = run_import(api, data, name)
    assert job["status"] == "rejected"
    assert says in job["message"]
    assert api.get(f"/api/v1/imports/{job['id']}/duplicates").json() == {
        "in_file": [],
        "existing": [],
    }


def test_a_report_longer_than_an_xlsx_sheet_asks_for_csv(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report of a file whose every row is wrong can be one row longer than a sheet
    holds; it is then offered as CSV (here with a sheet of two rows)."""
    from kontak.files import xlsx_sheet

    monkeypatch.setattr(xlsx_sheet, "MAX_ROW", 2)
    job = run_import(api, csv_bytes([["name", "phone"], ["A", "12"], ["B", "13"], ["C", "14"]]))
    assert job["status"] == "rejected"
    url = f"/api/v1/imports/{job['id']}/report"
    refused = api.get(url, params={"format": "xlsx"})
    assert refused.status_code == 422
    assert "Download the report as CSV" in refused.json()["detail"]
    assert len(api.get(url, params={"format": "csv"}).content.decode("utf-8-sig").splitlines()) == 4


def test_hostile_workbooks_end_the_child_not_the_server(api: TestClient) -> None:
    declared = run_import(api, far_corner_xlsx(), "declared.xlsx")
    assert declared["status"] == "rejected"
    assert "XFD" in declared["message"]

    hidden = run_import(api, strip_dimension(far_corner_xlsx()), "hidden.xlsx")
    assert hidden["status"] == "rejected"
    assert "could not be read" in hidden["message"] or "memory" in hidden["message"]
    # The server and its worker are still there.
    ok = run_import(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    assert ok["status"] == "completed"


@pytest.mark.parametrize(
    "path", sorted(REALWORLD.glob("*.csv")) + sorted(REALWORLD.glob("*.xlsx")), ids=lambda p: p.name
)
def test_every_realworld_file_is_imported_or_clearly_rejected(api: TestClient, path: Path) -> None:
    job = run_import(api, path.read_bytes(), path.name)
    assert job["status"] in {"completed", "rejected"}, job
    if job["status"] == "rejected":
        assert len(job["message"]) > 40
        assert any(w in job["message"] for w in ("upload", "column", "Save", "Remove", "fix")), job[
            "message"
        ]


def test_upload_checks(api: TestClient) -> None:
    no_file = api.post("/api/v1/imports", data={"on_existing": "skip"})
    assert no_file.status_code == 422
    assert no_file.headers["content-type"].startswith("application/problem+json")
    bad_mode = api.post(
        "/api/v1/imports", files={"file": ("a.csv", b"name,phone\n")}, data={"on_existing": "merge"}
    )
    assert bad_mode.status_code == 422
    assert bad_mode.json()["errors"][0]["field"] == "on_existing"
    assert api.get("/api/v1/imports/nope").status_code == 404


def test_upload_over_the_size_limit_is_413(app: FastAPI, admin: Member) -> None:
    app.state.settings.max_upload_bytes = 1000
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {admin.token}"
        response = client.post(
            "/api/v1/imports", files={"file": ("big.csv", b"name,phone\n" + b"a,1\n" * 400)}
        )
        assert response.status_code == 413
        assert "Split it" in response.json()["detail"]
        assert client.get("/api/v1/imports").json()["items"] == []


def test_jobs_are_listed_and_private_to_the_organization(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    job = run_import(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    listed = api.get("/api/v1/imports").json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert set(job) >= {
        "id",
        "status",
        "filename",
        "format",
        "rows_total",
        "rows_processed",
        "created",
        "updated",
        "skipped",
        "duplicate_count",
        "error_count",
        "created_at",
        "finished_at",
        "message",
    }
    other = make_member(sessions, "x@other.co.id", org="other", role="admin")
    for url in ("", "/duplicates", "/errors", "/report"):
        assert (
            api.get(f"/api/v1/imports/{job['id']}{url}", headers=other.headers).status_code == 404
        )
    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    denied = api.post(
        "/api/v1/imports", files={"file": ("a.csv", b"name,phone\n")}, headers=agent.headers
    )
    assert denied.status_code == 403
    assert api.get("/api/v1/contacts/export", headers=agent.headers).status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_reimports_unchanged_into_another_org(
    client: TestClient, admin: Member, sessions: sessionmaker[Session], fmt: str
) -> None:
    other = make_member(sessions, "x@other.co.id", org="other", role="admin")
    for member in (admin, other):
        for field in ({"key": "member_since", "type": "date"}, {"key": "vip", "type": "boolean"}):
            client.post("/api/v1/custom-fields", json=field, headers=member.headers)
    client.headers["Authorization"] = f"Bearer {admin.token}"
    client.post(
        "/api/v1/contacts",
        json=contact_payload(
            name='=HYPERLINK("http://evil")',
            tags=["vip", "lead"],
            social_accounts=[
                {"platform": "instagram", "handle": "a.b"},
                {"platform": "instagram", "handle": "a_c"},
            ],
            custom_fields={"member_since": "2024-08-17", "vip": True},
        ),
    )
    client.post(
        "/api/v1/contacts",
        json={"name": "-Minus", "email": "m@contoh.id", "address": "@home\nline 2"},
    )
    exported = client.get("/api/v1/contacts/export", params={"format": fmt})
    assert exported.status_code == 200
    if fmt == "csv":
        text = exported.content.decode("utf-8-sig")
        assert "'=HYPERLINK" in text
        assert "'+6281234567890" in text
        assert "'-Minus" in text
    mine = contacts(client)

    client.headers["Authorization"] = f"Bearer {other.token}"
    job = run_import(client, exported.content, f"export.{fmt}")
    assert job["status"] == "completed", client.get(f"/api/v1/imports/{job['id']}/errors").json()
    theirs = contacts(client)

    def shape(items: list[dict[str, object]]) -> list[tuple[str, ...]]:
        keys = (
            "name",
            "email",
            "phone",
            "channel",
            "address",
            "social_accounts",
            "tags",
            "custom_fields",
        )
        return sorted(tuple(str(c[k]) for k in keys) for c in items)

    assert len(theirs) == 2
    assert shape(theirs) == shape(mine)


def test_job_progress_fields_while_queued(api: TestClient) -> None:
    job = upload(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    assert job["status"] in {"queued", "processing", "completed"}
    assert job["rows_processed"] == 0
    assert wait(api, job["id"])["rows_processed"] == 1


def test_messages_follow_accept_language(api: TestClient) -> None:
    data = csv_bytes(
        [["nama", "no hp"], ["Budi", "12"], ["Ani", "0812-3456-7890"], ["Ani 2", "0812-3456-7890"]]
    )
    job = run_import(api, data)
    english = api.get(f"/api/v1/imports/{job['id']}").json()["message"]
    assert english.startswith("Nothing was imported")
    indonesian = api.get(
        f"/api/v1/imports/{job['id']}", headers={"Accept-Language": "id-ID,id;q=0.9"}
    ).json()
    assert indonesian["message"].startswith(
        "Tidak ada yang diimpor: 1 nilai muncul berulang di file; 1 sel berisi kesalahan"
    )
    errors = api.get(
        f"/api/v1/imports/{job['id']}/errors", headers={"Accept-Language": "id"}
    ).json()
    assert errors[0]["message"].startswith("'12' bukan nomor telepon yang valid")
    listed = api.get("/api/v1/imports", headers={"Accept-Language": "id"}).json()["items"]
    assert listed[0]["message"] == indonesian["message"]
    problem = api.post(
        "/api/v1/contacts", json={"name": ""}, headers={"Accept-Language": "id"}
    ).json()
    assert problem["errors"][0]["message"] == "Nama wajib diisi: tulis nama kontak."
    rejected = run_import(api, b"nama,gender\r\nBudi,m\r\n")
    translated = api.get(
        f"/api/v1/imports/{rejected['id']}", headers={"Accept-Language": "id"}
    ).json()
    assert translated["message"].startswith("File berisi kolom yang tidak dikenal Kontak: 'gender'")


def test_import_connection_gets_its_foreign_keys_back(engine: Engine) -> None:
    """The write turns SQLite's per-row foreign-key checks off; the pooled connection must
    get them back, or later requests would run without them."""
    from kontak.import_job import bulk

    with engine.connect() as connection:
        bulk.prepare_connection(connection)
        bulk.detach_stage(connection)
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_import_connection_gets_its_page_cache_back(engine: Engine, tmp_path: Path) -> None:
    """The write takes a bigger page cache on SQLite; the pooled connection gets its own
    back (it was set to SQLite's 2 MB default, not the engine's 64 MB, so the reads served
    by that connection after any import were slower)."""
    from kontak.import_job import bulk

    stage = Stage(tmp_path / "stage.db", create=True)
    stage.close()
    sessions = sessionmaker(bind=engine)
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            pytest.skip("SQLite's page cache")
        before = connection.exec_driver_sql("PRAGMA main.cache_size").scalar()
        assert before == -64 * 1024
        bulk.prepare_connection(connection)
        session = sessions(bind=connection)
        bulk.attach_stage(session, tmp_path / "stage.db")
        assert (
            connection.exec_driver_sql("PRAGMA main.cache_size").scalar() == -bulk.IMPORT_CACHE_KIB
        )
        session.rollback()
        session.close()
        bulk.detach_stage(connection)
        assert connection.exec_driver_sql("PRAGMA main.cache_size").scalar() == before


def test_a_cli_job_is_never_taken_by_a_servers_worker(
    settings: Settings, sessions: sessionmaker[Session], admin: Member
) -> None:
    """`kontak import` runs its own job; a server sharing the database polls for queued
    jobs every second and must not take it first."""

    from kontak.db.session import session_scope
    from kontak.import_job import repository
    from kontak.import_job.runner import run_job

    job_id = _start_cli_job(settings, sessions, admin)
    with session_scope(sessions) as session:
        assert repository.next_queued(session) is None
    run_job(settings, sessions, job_id, claimed=True)
    with session_scope(sessions) as session:
        done = repository.get_any(session, job_id)
        assert done is not None
        assert (done.status, done.created) == ("completed", 1)


def test_the_cli_shows_the_outcome_before_the_search_upkeep(
    settings: Settings, sessions: sessionmaker[Session], admin: Member
) -> None:
    """`kontak import` asks for the upkeep after a completed import (search indexing,
    statistics: 1M contacts, 8-30 s) back, to show the outcome first: the job is then
    completed and its contacts stored, not yet indexed; the upkeep indexes them."""

    from kontak.db import search_index
    from kontak.db.session import session_scope
    from kontak.import_job import repository
    from kontak.import_job.runner import run_job

    def pending() -> int:
        with sessions() as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                return len(search_index.trigram_ranges(connection))
            ranges = search_index.pending_ranges(connection) or {}
            return sum(last - first + 1 for first, last in ranges.get("contact", []))

    search_index.catch_up(sessions.kw["bind"])
    job_id = _start_cli_job(settings, sessions, admin)
    upkeep = run_job(settings, sessions, job_id, claimed=True, defer_upkeep=True)
    assert upkeep is not None
    with session_scope(sessions) as session:
        done = repository.get_any(session, job_id)
        assert done is not None
        assert (done.status, done.created) == ("completed", 1)
    assert pending() == 1
    upkeep()
    assert pending() == 0


def test_values_with_quotes_commas_backslashes_and_line_breaks_arrive_intact(
    api: TestClient,
) -> None:
    # The bulk write builds CSV (PostgreSQL COPY) or SQL (SQLite) from these: nothing may
    # be lost or reinterpreted on the way.
    api.post("/api/v1/custom-fields", json={"key": "catatan", "type": "text"})
    odd = [
        [
            'Budi "Bos" Santoso, Jr.',
            "budi@contoh.id",
            "",
            "",
            'Jl. A\\B, "Blok C"\nLantai 2',
            "x,y",
        ],
        ["\\N", "", "081234567890", "", "\\", ""],
        ["Ana\\tB", "", "081234567891", "", '""', "a\\b"],
    ]
    header = ["name", "email", "phone", "channel", "address", "tags", "catatan"]
    data = csv_bytes([header, *([*r, r[0] + "\n{}"] for r in odd)])
    job = run_import(api, data)
    assert job["status"] == "completed", api.get(f"/api/v1/imports/{job['id']}/errors").json()
    stored = {c["name"]: c for c in contacts(api)}
    budi = stored['Budi "Bos" Santoso, Jr.']
    assert budi["address"] == 'Jl. A\\B, "Blok C"\nLantai 2'
    assert budi["tags"] == ["x", "y"]
    assert budi["custom_fields"] == {"catatan": 'Budi "Bos" Santoso, Jr.\n{}'}
    assert stored["\\N"]["address"] == "\\"
    assert stored["\\N"]["email"] is None
    assert stored["Ana\\tB"]["address"] == '""'
    assert stored["Ana\\tB"]["tags"] == ["a\\b"]
    # The same file as an update goes through the update's own CSV (PostgreSQL): every
    # value arrives as stored, so no contact changes.
    again = run_import(api, data, on_existing="update")
    assert (again["status"], again["updated"]) == ("completed", 3), again
    assert "3 already as in the file" in again["message"]
    assert {c["name"]: c for c in contacts(api)} == stored


def test_the_job_is_completed_before_its_upkeep_runs(
    settings: Settings,
    sessions: sessionmaker[Session],
    admin: Member,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planner statistics and search indexing after an import take seconds at a million
    rows and only make later queries fast: the user must not wait for them (they once
    ran before the job was marked completed)."""
    from kontak.db import search_index
    from kontak.db.session import session_scope
    from kontak.import_job import repository
    from kontak.import_job.runner import run_job

    seen: list[str] = []
    real_catch_up = search_index.catch_up

    def catch_up(engine: Engine, **kwargs: Any) -> int:
        with session_scope(sessions) as session:
            job = repository.get_any(session, job_id)
            assert job is not None
            seen.append(job.status)
        return real_catch_up(engine, **kwargs)

    monkeypatch.setattr(search_index, "catch_up", catch_up)
    job_id = _start_cli_job(settings, sessions, admin)
    run_job(settings, sessions, job_id, claimed=True)
    assert seen == ["completed"]


def _start_cli_job(settings: Settings, sessions: sessionmaker[Session], admin: Member) -> str:
    """A one-row job started the way `kontak import` starts one (claimed by this process);
    returns its id."""
    from kontak.account import service as account_service
    from kontak.db.session import session_scope
    from kontak.import_job import service as import_service
    from kontak.import_job.runner import WORKER_ID

    with session_scope(sessions, write=True) as session:
        org = account_service.get_organization(session, admin.org)
        return import_service.start(
            session,
            settings,
            org,
            user_id=None,
            filename="a.csv",
            upload=io.BytesIO(b"name,phone\r\nBudi,0812-3456-7890\r\n"),
            worker=WORKER_ID,
        ).id


def test_limit_cuts_the_duplicates_and_errors_to_their_first_entries(api: TestClient) -> None:
    # The import page asks for the first few of each (a 1M-row file can hold ~10,000
    # groups and invalid rows); without `limit` the answer is whole, as the spec says.
    kept = [
        api.post("/api/v1/contacts", json={"name": f"Ada {i}", "phone": f"0811-0000-000{i}"}).json()
        for i in range(3)
    ]
    rows = [["name", "email", "phone"]]
    rows += [[f"Lama {i}", "", f"+62 811 0000 000{i}"] for i in range(3)]  # rows 2-4: stored
    rows += [[f"Sama {i}", f"sama{i}@contoh.id", "0812-0000-0001"] for i in range(3)]  # 5-7
    rows += [[f"Kembar {i}", "kembar@contoh.id", f"0813000000{i}"] for i in range(2)]  # 8-9
    rows += [[f"Dobel {i}", "dobel@contoh.id", f"0814000000{i}"] for i in range(2)]  # 10-11
    rows += [[f"Salah {i}", "bukan-email", f"0815000000{i}"] for i in range(3)]  # 12-14
    job = run_import(api, csv_bytes(rows))
    assert job["status"] == "rejected"
    url = f"/api/v1/imports/{job['id']}"

    whole = api.get(f"{url}/duplicates").json()
    assert [(g["key"], [r["row"] for r in g["rows"]]) for g in whole["in_file"]] == [
        ("phone", [5, 6, 7]),
        ("email", [8, 9]),
        ("email", [10, 11]),
    ]
    assert [(e["row"], e["contact_id"]) for e in whole["existing"]] == [
        (2, kept[0]["id"]),
        (3, kept[1]["id"]),
        (4, kept[2]["id"]),
    ]
    cut = api.get(f"{url}/duplicates", params={"limit": 2}).json()
    assert cut == {
        "in_file": [{**g, "rows": g["rows"][:2]} for g in whole["in_file"][:2]],
        "existing": whole["existing"][:2],
    }
    errors = api.get(f"{url}/errors").json()
    assert [e["row"] for e in errors] == [12, 13, 14]
    assert api.get(f"{url}/errors", params={"limit": 2}).json() == errors[:2]

    for bad in ("0", "10001", "x"):
        refused = api.get(f"{url}/errors", params={"limit": bad})
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "limit"


@pytest.mark.slow  # 70,000 rows: ~5 s on SQLite, ~11 s on PostgreSQL
def test_a_file_naming_more_tags_than_a_statement_can_bind_imports(api: TestClient) -> None:
    # Tags were looked up in one statement and created one by one, each in a savepoint: on
    # PostgreSQL more than 65,535 names failed an import written after its checking (here:
    # `update` into an organization that holds contacts), the protocol's cap on a
    # statement's values; on SQLite 200,000 names took ~70 s more than the rows themselves.
    known = api.post("/api/v1/tags", json={"name": "VIP"}).json()
    first = api.post("/api/v1/contacts", json={"name": "Orang 0", "phone": "085700000000"})
    count = 70_000
    rows = [["name", "phone", "tags"]]
    rows += [[f"Orang {i}", f"0857{i:08d}", f"pelanggan-{i:05d}, vip"] for i in range(count)]
    job = wait(api, upload(api, csv_bytes(rows), on_existing="update")["id"], timeout=120)
    assert (job["status"], job["created"], job["updated"]) == ("completed", count - 1, 1), job
    tags = api.get("/api/v1/tags").json()
    assert len(tags) == count + 1
    by_name = {t["name"]: t for t in tags}
    assert by_name["vip"] == {**known, "contact_count": count}
    assert by_name["pelanggan-69999"]["contact_count"] == 1
    found = api.get("/api/v1/contacts", params={"tag": "pelanggan-12345"}).json()["items"]
    assert [(c["name"], c["tags"]) for c in found] == [("Orang 12345", ["pelanggan-12345", "vip"])]
    updated = api.get(f"/api/v1/contacts/{first.json()['id']}").json()
    assert updated["tags"] == ["pelanggan-00000", "vip"]


def test_the_whole_answers_are_streamed_and_equal_the_models(api: TestClient) -> None:
    # Without a limit, /duplicates and /errors are written as read from the staging file:
    # re-importing a 1M-row file holds ~2M matches, which as models took ~1 KB each.
    count = 1500
    stored = [["name", "email", "phone"]]
    stored += [[f"Lama {i}", f"lama{i}@contoh.id", f"0815{i:08d}"] for i in range(count)]
    assert run_import(api, csv_bytes(stored))["status"] == "completed"
    again = [*stored, ["Kembar", "kembar@contoh.id", ""], ["Kembar 2", "KEMBAR@contoh.id", ""]]
    again += [[f"Salah {i}", f"salah{i}@", ""] for i in range(count)]
    job = run_import(api, csv_bytes(again))
    assert job["status"] == "rejected"
    url = f"/api/v1/imports/{job['id']}"

    whole = api.get(f"{url}/duplicates")
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/json"
    assert "content-length" not in whole.headers  # sent in pieces
    found = whole.json()
    assert len(found["existing"]) == 2 * count  # each row's email and phone
    assert found["existing"][:2] == [
        {"row": 2, "key": "email", "value": "lama0@contoh.id", "contact_id": ANY_ID},
        {"row": 2, "key": "phone", "value": "+6281500000000", "contact_id": ANY_ID},
    ]
    assert [(g["key"], [r["row"] for r in g["rows"]]) for g in found["in_file"]] == [
        ("email", [count + 2, count + 3])
    ]
    assert found == api.get(f"{url}/duplicates", params={"limit": 10_000}).json()

    errors = api.get(f"{url}/errors")
    assert "content-length" not in errors.headers
    assert len(errors.json()) == count
    assert errors.json() == api.get(f"{url}/errors", params={"limit": 10_000}).json()
    indonesian = api.get(f"{url}/errors", headers={"Accept-Language": "id"}).json()
    assert indonesian[0]["message"] != errors.json()[0]["message"]
    assert api.get("/api/v1/imports/01NOSUCHJOB0000000000000000/duplicates").status_code == 404
