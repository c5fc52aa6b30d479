"""Tags and custom fields through the API, and custom field values on contacts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import contact_payload


def test_tags_list_with_contact_counts(api: TestClient) -> None:
    api.post("/api/v1/contacts", json=contact_payload(tags=["VIP", "lead"]))
    api.post("/api/v1/contacts", json={"name": "Ani", "phone": "0813-1111-2222", "tags": ["vip"]})
    created = api.post("/api/v1/tags", json={"name": "  Cold   Lead "})
    assert created.status_code == 201
    assert created.json()["name"] == "cold lead"
    assert created.json()["contact_count"] == 0

    tags = {t["name"]: t["contact_count"] for t in api.get("/api/v1/tags").json()}
    assert tags == {"cold lead": 0, "lead": 1, "vip": 2}


def test_tag_names_are_unique_case_insensitively(api: TestClient) -> None:
    assert api.post("/api/v1/tags", json={"name": "VIP"}).status_code == 201
    again = api.post("/api/v1/tags", json={"name": "vip"})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    for bad in ("", "   ", "a,b", "x" * 101):
        response = api.post("/api/v1/tags", json={"name": bad})
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == "name"


def test_custom_field_definitions_are_checked(api: TestClient) -> None:
    ok = api.post(
        "/api/v1/custom-fields",
        json={"key": "tier", "label": "Tier", "type": "select", "options": ["Gold", "Silver"]},
    )
    assert ok.status_code == 201
    assert ok.json()["options"] == ["Gold", "Silver"]
    cases = [
        ({"key": "Tier Level", "type": "text"}, "key"),
        ({"key": "phone", "type": "text"}, "key"),
        ({"key": "nomor_telepon", "type": "text"}, "key"),
        ({"key": "age", "type": "integer"}, "type"),
        ({"key": "size", "type": "select"}, "options"),
        ({"key": "size", "type": "select", "options": ["S", "s"]}, "options"),
        ({"key": "note", "type": "text", "options": ["x"]}, "options"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/custom-fields", json=body)
        assert response.status_code == 422, body
        assert field in {e["field"] for e in response.json()["errors"]}, body
    assert (
        api.post("/api/v1/custom-fields", json={"key": "tier", "type": "text"}).status_code == 409
    )
    keys = [f["key"] for f in api.get("/api/v1/custom-fields").json()]
    assert keys == ["tier"]


def test_custom_field_values_are_typed_and_checked(api: TestClient) -> None:
    for body in (
        {"key": "member_since", "type": "date"},
        {"key": "orders", "type": "number"},
        {"key": "newsletter", "type": "boolean"},
        {"key": "tier", "type": "select", "options": ["Gold", "Silver"], "required": True},
        {"key": "note", "type": "text"},
    ):
        assert api.post("/api/v1/custom-fields", json=body).status_code == 201

    created = api.post(
        "/api/v1/contacts",
        json=contact_payload(
            custom_fields={
                "member_since": "17/08/2024",
                "orders": "12",
                "newsletter": "ya",
                "tier": "gold",
                "note": " hello ",
            }
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json()["custom_fields"] == {
        "member_since": "2024-08-17",
        "orders": 12,
        "newsletter": True,
        "tier": "Gold",
        "note": "hello",
    }

    missing = api.post("/api/v1/contacts", json={"name": "A", "phone": "0813-1111-2222"})
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"field": "custom_fields.tier", "message": "Tier is required."}
    ]

    bad = api.post(
        "/api/v1/contacts",
        json={
            "name": "A",
            "phone": "0813-1111-2222",
            "custom_fields": {
                "tier": "Bronze",
                "orders": "many",
                "member_since": "31/02/2024",
                "colour": "red",
            },
        },
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {
        "custom_fields.tier",
        "custom_fields.orders",
        "custom_fields.member_since",
        "custom_fields.colour",
    }

    contact_id = created.json()["id"]
    patched = api.patch(
        f"/api/v1/contacts/{contact_id}", json={"custom_fields": {"orders": 13, "note": None}}
    )
    assert patched.status_code == 200
    assert patched.json()["custom_fields"] == {
        "member_since": "2024-08-17",
        "orders": 13,
        "newsletter": True,
        "tier": "Gold",
    }
    emptied = api.patch(f"/api/v1/contacts/{contact_id}", json={"custom_fields": {"tier": None}})
    assert emptied.status_code == 422


def test_a_new_custom_field_applies_to_the_next_contact_written(api: TestClient) -> None:
    """A server process keeps the fields' specs by the organization's version of them
    (custom_field.service.kept_specs): a field added after contacts were written (the specs
    kept) is required and checked at once, in creates and updates."""
    first = api.post("/api/v1/contacts", json={"name": "Ani", "phone": "0813-1111-2222"})
    assert first.status_code == 201
    body = {"key": "tier", "type": "select", "options": ["Gold"], "required": True}
    assert api.post("/api/v1/custom-fields", json=body).status_code == 201

    missing = api.post("/api/v1/contacts", json={"name": "Budi", "phone": "0813-1111-3333"})
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"field": "custom_fields.tier", "message": "Tier is required."}
    ]
    wrong = api.patch(
        f"/api/v1/contacts/{first.json()['id']}", json={"custom_fields": {"tier": "Bronze"}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "custom_fields.tier"
    ok = api.post(
        "/api/v1/contacts",
        json={"name": "Budi", "phone": "0813-1111-3333", "custom_fields": {"tier": "gold"}},
    )
    assert ok.status_code == 201
    assert ok.json()["custom_fields"] == {"tier": "Gold"}

    assert (
        api.post("/api/v1/custom-fields", json={"key": "orders", "type": "number"}).status_code
        == 201
    )
    typed = api.post(
        "/api/v1/contacts",
        json={
            "name": "Cici",
            "phone": "0813-1111-4444",
            "custom_fields": {"tier": "Gold", "orders": "many"},
        },
    )
    assert typed.status_code == 422
    assert [e["field"] for e in typed.json()["errors"]] == ["custom_fields.orders"]


def test_postgresql_a_deleted_contacts_links_are_found_by_the_primary_key(
    engine: Engine,
) -> None:
    # Every link deleted and the table analyzed as empty (before a vacuum): the planner
    # must still find a contact's links by the primary key, not by reading the tag
    # index whole (it did, for each contact of a bulk delete, while that index was a
    # full one: minutes for 200,000 contacts).
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO organization (id, slug, name, default_region, created_at)"
            " VALUES ('org-links', 'org-links', 'Links', 'ID', now())"
        )
        run(
            "INSERT INTO tag (id, organization_id, name, created_at)"
            " VALUES ('tag-links', 'org-links', 'vip', now())"
        )
        run(
            "INSERT INTO contact (id, organization_id, name, custom_fields, source,"
            " created_at, updated_at) SELECT 'c' || lpad(i::text, 8, '0'), 'org-links',"
            " 'Kontak ' || i, '{}', 'manual', now(), now() FROM generate_series(1, 20000) i"
        )
        run(
            "INSERT INTO contact_tag SELECT id, 'tag-links', 'org-links' FROM contact"
            " WHERE organization_id = 'org-links'"
        )
        run("ANALYZE contact_tag")
        run("DELETE FROM contact_tag")
        run("ANALYZE contact_tag")
        # The statement of the foreign key's cascade for one deleted contact.
        plan = "\n".join(
            run("EXPLAIN DELETE FROM ONLY contact_tag WHERE 'c00000001' = contact_id").scalars()
        )
        run("DELETE FROM contact WHERE organization_id = 'org-links'")
    assert "pk_contact_tag" in plan, plan


def test_tags_narrowed_by_the_start_of_their_name_and_a_limit(api: TestClient) -> None:
    # For suggestions as a user types: an organization can hold 200,000 tags.
    for name in ("vip", "VIP1", "vipgold", "zz_top", "reguler"):
        assert api.post("/api/v1/tags", json={"name": name}).status_code == 201
    body = {"name": "Budi", "phone": "0812-3456-7890", "tags": ["vipgold"]}
    assert api.post("/api/v1/contacts", json=body).status_code == 201

    def names(**params: str | int) -> list[str]:
        response = api.get("/api/v1/tags", params=params)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()]

    assert names(q="VIP") == ["vip", "vip1", "vipgold"]
    assert names(q="  vip  ", limit=2) == ["vip", "vip1"]
    assert names(q="v_p") == []  # _ and % are plain characters
    assert names(q="v%") == []
    assert names(q="zz_") == ["zz_top"]
    assert names(q="vip,gold") == []  # no tag holds a comma
    assert names(q="") == names() == ["reguler", "vip", "vip1", "vipgold", "zz_top"]
    assert names(limit=1) == ["reguler"]
    counted = api.get("/api/v1/tags", params={"q": "vipg"}).json()
    assert [(t["name"], t["contact_count"]) for t in counted] == [("vipgold", 1)]
    for bad in ({"limit": 0}, {"limit": 1001}, {"q": "x" * 201}):
        response = api.get("/api/v1/tags", params=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
