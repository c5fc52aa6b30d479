"""Contacts through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import contact_payload

URL = "/api/v1/contacts"


def test_health_needs_no_auth(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_create_normalizes_every_field(api: TestClient) -> None:
    response = api.post(
        URL,
        json={
            "name": "  Budi   Santoso ",
            "email": " Budi@Example.COM ",
            "phone": "0812-3456-7890",
            "channel": "WhatsApp",
            "address": " Jl. Merdeka No. 1\r\nJakarta ",
            "social_accounts": [
                {"platform": "instagram", "handle": "https://www.instagram.com/budi_s/"},
                {"platform": "twitter", "handle": "@budi"},
            ],
            "tags": ["VIP", " Customer ", "vip"],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Budi Santoso"
    assert body["email"] == "Budi@example.com"
    assert body["phone"] == "+6281234567890"
    assert body["channel"] == "whatsapp"
    assert body["address"] == "Jl. Merdeka No. 1\nJakarta"
    assert body["social_accounts"] == [
        {"platform": "instagram", "handle": "budi_s"},
        {"platform": "twitter", "handle": "budi"},
    ]
    assert body["tags"] == ["customer", "vip"]
    assert body["source"] == "api"
    assert body["custom_fields"] == {}
    assert body["id"]
    assert body["created_at"] == body["updated_at"]

    fetched = api.get(f"{URL}/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_invalid_contact_is_422_problem_listing_every_field(api: TestClient) -> None:
    response = api.post(
        URL, json={"name": " ", "email": "budi@", "phone": "6.28123E+12", "channel": "pigeon"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"]
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert set(fields) == {"name", "email", "phone", "channel"}
    assert "Format the phone column as Text" in fields["phone"]


def test_contact_needs_a_way_to_reach_it(api: TestClient) -> None:
    response = api.post(URL, json={"name": "Budi"})
    assert response.status_code == 422
    assert "a way to reach it" in response.json()["errors"][0]["message"]

    only_social = api.post(
        URL, json={"name": "Budi", "social_accounts": [{"platform": "telegram", "handle": "budi"}]}
    )
    assert only_social.status_code == 201


def test_wrong_json_types_and_unknown_fields_are_422(api: TestClient) -> None:
    response = api.post(URL, json={"name": ["x"], "phone": "0812-3456-7890", "colour": "red"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"name", "colour"} <= fields


def test_duplicate_identities_are_409_naming_the_existing_contact(api: TestClient) -> None:
    first = api.post(
        URL,
        json=contact_payload(social_accounts=[{"platform": "instagram", "handle": "budi_s"}]),
    ).json()
    response = api.post(
        URL,
        json={
            "name": "Someone Else",
            "email": "BUDI@example.com",
            "phone": "+62 812 3456 7890",
            "social_accounts": [{"platform": "instagram", "handle": "@Budi_S"}],
        },
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    conflicts = response.json()["conflicts"]
    assert {c["field"] for c in conflicts} == {"email", "phone", "social_accounts.instagram"}
    assert {c["contact_id"] for c in conflicts} == {first["id"]}
    assert {"field": "phone", "value": "+6281234567890", "contact_id": first["id"]} in conflicts
    assert len(api.get(URL).json()["items"]) == 1


def test_same_handle_on_another_platform_is_fine(api: TestClient) -> None:
    api.post(
        URL, json={"name": "A", "social_accounts": [{"platform": "instagram", "handle": "x1"}]}
    )
    response = api.post(
        URL, json={"name": "B", "social_accounts": [{"platform": "twitter", "handle": "x1"}]}
    )
    assert response.status_code == 201


def test_patch_changes_only_what_is_sent(api: TestClient) -> None:
    created = api.post(URL, json=contact_payload()).json()
    response = api.patch(f"{URL}/{created['id']}", json={"name": "Budi S.", "channel": None})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Budi S."
    assert body["channel"] is None
    assert body["phone"] == created["phone"]
    assert body["email"] == created["email"]
    assert body["tags"] == ["vip"]
    assert body["updated_at"] > created["updated_at"]


def test_patch_replaces_tags_and_social_accounts(api: TestClient) -> None:
    created = api.post(
        URL,
        json=contact_payload(
            social_accounts=[{"platform": "instagram", "handle": "budi_s"}], tags=["a", "b"]
        ),
    ).json()
    response = api.patch(
        f"{URL}/{created['id']}",
        json={
            "tags": ["B", "c"],
            "social_accounts": [
                {"platform": "instagram", "handle": "BUDI_S"},
                {"platform": "tiktok", "handle": "@budi"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tags"] == ["b", "c"]
    assert body["social_accounts"] == [
        {"platform": "instagram", "handle": "BUDI_S"},
        {"platform": "tiktok", "handle": "budi"},
    ]


def test_patch_conflict_is_409_and_changes_nothing(api: TestClient) -> None:
    one = api.post(URL, json=contact_payload()).json()
    two = api.post(URL, json={"name": "Ani", "phone": "0813-1111-2222"}).json()
    response = api.patch(f"{URL}/{two['id']}", json={"phone": "081234567890", "name": "Ani B"})
    assert response.status_code == 409
    assert response.json()["conflicts"] == [
        {"field": "phone", "value": "+6281234567890", "contact_id": one["id"]}
    ]
    assert api.get(f"{URL}/{two['id']}").json()["name"] == "Ani"


def test_patch_keeping_own_values_is_not_a_conflict(api: TestClient) -> None:
    created = api.post(URL, json=contact_payload()).json()
    response = api.patch(f"{URL}/{created['id']}", json={"phone": "+6281234567890"})
    assert response.status_code == 200


def test_patch_cannot_remove_the_last_way_to_reach(api: TestClient) -> None:
    created = api.post(URL, json={"name": "Ani", "phone": "0813-1111-2222"}).json()
    response = api.patch(f"{URL}/{created['id']}", json={"phone": None})
    assert response.status_code == 422
    assert api.get(f"{URL}/{created['id']}").json()["phone"] == "+6281311112222"


def test_delete_then_404(api: TestClient) -> None:
    created = api.post(URL, json=contact_payload()).json()
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    for response in (
        api.get(f"{URL}/{created['id']}"),
        api.patch(f"{URL}/{created['id']}", json={"name": "x"}),
        api.delete(f"{URL}/{created['id']}"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
    # The identities are free again.
    assert api.post(URL, json=contact_payload()).status_code == 201


def test_list_filters_by_q_tag_and_channel(api: TestClient) -> None:
    api.post(
        URL,
        json=contact_payload(
            social_accounts=[{"platform": "instagram", "handle": "budi_ig"}], tags=["VIP"]
        ),
    )
    api.post(
        URL,
        json={
            "name": "Siti Rahma",
            "email": "siti@contoh.id",
            "phone": "+62 813 9999 0000",
            "channel": "email",
            "tags": ["lead"],
        },
    )

    def names(**params: str) -> list[str]:
        response = api.get(URL, params=params)
        assert response.status_code == 200, response.text
        return sorted(c["name"] for c in response.json()["items"])

    assert names() == ["Budi Santoso", "Siti Rahma"]
    assert names(q="santo") == ["Budi Santoso"]
    assert names(q="SITI@CONTOH") == ["Siti Rahma"]
    assert names(q="0813-9999") == ["Siti Rahma"]
    assert names(q="+6281234") == ["Budi Santoso"]
    assert names(q="99990000") == ["Siti Rahma"]
    assert names(q="budi_ig") == ["Budi Santoso"]
    assert names(q="100%") == []
    assert names(tag="vip") == ["Budi Santoso"]
    assert names(tag="LEAD") == ["Siti Rahma"]
    assert names(channel="email") == ["Siti Rahma"]
    assert names(channel="whatsapp", tag="vip") == ["Budi Santoso"]
    assert names(tag="nobody") == []


def test_list_pages_with_a_cursor(api: TestClient) -> None:
    ids = [
        api.post(URL, json={"name": f"C{i}", "phone": f"0812000000{i:02d}"}).json()["id"]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get(URL, params=params).json()
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # newest first, each once


def test_a_listed_contact_is_the_contact_read_alone(api: TestClient) -> None:
    # The list reads its page as rows with the links of all its contacts at once; the
    # single read loads the contact's objects. Both give the same shape: accounts by
    # platform then handle, tags by name, custom fields, and empty lists for none. Over
    # 50 contacts: the links of a full page (51 ids asked, one past the page).
    for field in ({"key": "orders", "type": "number"}, {"key": "note", "type": "text"}):
        assert api.post("/api/v1/custom-fields", json=field).status_code == 201
    for i in range(55):
        body: dict[str, object] = {"name": f"Kontak {i}", "phone": f"0812{i:08d}"}
        if i % 2:
            body |= {
                "email": f"k{i}@contoh.id",
                "channel": "email",
                "address": f"Jl. Merdeka {i}",
                "tags": ["zeta", f"Tag {i}", "alpha"],
                "custom_fields": {"orders": str(i), "note": f"catatan {i}"},
                "social_accounts": [
                    {"platform": "tiktok", "handle": f"Zed{i}"},
                    {"platform": "instagram", "handle": f"b_{i}"},
                    {"platform": "instagram", "handle": f"A_{i}"},
                ],
            }
        assert api.post(URL, json=body).status_code == 201, body
    listed = api.get(URL, params={"limit": 200}).json()["items"]
    assert len(listed) == 55
    for item in listed:
        assert item == api.get(f"{URL}/{item['id']}").json()
    full = next(item for item in listed if item["name"] == "Kontak 53")
    assert full["tags"] == ["alpha", "tag 53", "zeta"]
    assert [a["handle"] for a in full["social_accounts"]] == ["A_53", "b_53", "Zed53"]
    bare = next(item for item in listed if item["name"] == "Kontak 54")
    assert (bare["tags"], bare["social_accounts"], bare["custom_fields"]) == ([], [], {})
    page = api.get(URL, params={"limit": 50}).json()
    assert page["items"] == listed[:50]
    assert page["next_cursor"]


def test_list_rejects_bad_limits_and_cursors(api: TestClient) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "%%%"}, {"channel": "pigeon"}):
        response = api.get(URL, params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"]


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_openapi_lists_the_contract(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/tags",
        "/api/v1/custom-fields",
    ):
        assert path in paths


def test_whole_phone_or_email_queries_find_exactly_that_contact(api: TestClient) -> None:
    budi = api.post(URL, json=contact_payload()).json()
    api.post(URL, json={"name": "Ani 0812-3456-7890", "phone": "0813-1111-2222"})
    for q in ("0812-3456-7890", "+62 812 3456 7890", "6281234567890", "BUDI@example.com"):
        items = api.get(URL, params={"q": q}).json()["items"]
        assert [c["id"] for c in items] == [budi["id"]], q
    assert api.get(URL, params={"q": "nobody@example.com"}).json()["items"] == []


def test_a_created_contact_reads_back_exactly_as_its_create_answered(api: TestClient) -> None:
    # The create answers from what it inserted (Core inserts, no read-back): the stored
    # contact must be that answer, field for field, on both engines.
    field = {"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}
    assert api.post("/api/v1/custom-fields", json=field).status_code == 201
    created = api.post(
        URL,
        json={
            "name": "Sari",
            "email": "Sari@Example.com",
            "phone": "0812 9999 0000",
            "social_accounts": [
                {"platform": "twitter", "handle": "@sari"},
                {"platform": "instagram", "handle": "Zeta"},
                {"platform": "instagram", "handle": "alpha"},
            ],
            "tags": ["zeta", "Alpha"],
            "custom_fields": {"tier": "gold"},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert [(s["platform"], s["handle"]) for s in body["social_accounts"]] == [
        ("instagram", "alpha"),
        ("instagram", "Zeta"),
        ("twitter", "sari"),
    ]
    assert body["tags"] == ["alpha", "zeta"]
    assert body["custom_fields"] == {"tier": "gold"}
    assert api.get(f"{URL}/{body['id']}").json() == body
    assert api.get(URL, params={"q": "sari"}).json()["items"] == [body]
