"""Who may do what: tokens, organizations and roles."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from kontak.account.secrets import hash_token
from kontak.db.models import ApiToken, User
from kontak.db.session import session_scope
from tests.factories import Member, contact_payload, make_member

URL = "/api/v1/contacts"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Bearer kontak_not-a-token", "Basic YWRtaW46YWRtaW4="]
)
def test_missing_or_bad_token_is_401_problem(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "kontak token create" in response.json()["detail"]


def test_other_organization_gets_404_for_every_contact_url(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    other = make_member(sessions, "boss@other.co.id", org="other", role="admin")
    created = client.post(URL, json=contact_payload(), headers=admin.headers).json()
    item = f"{URL}/{created['id']}"

    assert client.get(item, headers=other.headers).status_code == 404
    assert client.patch(item, json={"name": "x"}, headers=other.headers).status_code == 404
    assert client.delete(item, headers=other.headers).status_code == 404
    assert client.get(URL, headers=other.headers).json()["items"] == []
    assert client.get(URL, params={"q": "Budi"}, headers=other.headers).json()["items"] == []
    assert client.get("/api/v1/tags", headers=other.headers).json() == []
    # The same identities are free in the other organization.
    assert client.post(URL, json=contact_payload(), headers=other.headers).status_code == 201
    # And the first organization's contact is untouched.
    assert client.get(item, headers=admin.headers).json() == created


def test_agent_views_creates_and_edits_but_cannot_delete(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    created = client.post(URL, json=contact_payload(), headers=agent.headers)
    assert created.status_code == 201
    item = f"{URL}/{created.json()['id']}"
    assert client.get(item, headers=agent.headers).status_code == 200
    assert client.patch(item, json={"name": "B"}, headers=agent.headers).status_code == 200

    denied = client.delete(item, headers=agent.headers)
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert "agent" in denied.json()["detail"]
    assert client.get(item, headers=admin.headers).status_code == 200

    assert client.post("/api/v1/tags", json={"name": "x"}, headers=agent.headers).status_code == 403
    assert client.get("/api/v1/tags", headers=agent.headers).status_code == 200


def test_supervisor_deletes_and_tags_but_defines_no_custom_fields(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    supervisor = make_member(sessions, "sup@acme.co.id", org="acme", role="supervisor")
    created = client.post(URL, json=contact_payload(), headers=supervisor.headers).json()
    assert (
        client.post("/api/v1/tags", json={"name": "x"}, headers=supervisor.headers).status_code
        == 201
    )
    field = {"key": "member_since", "type": "date"}
    assert (
        client.post("/api/v1/custom-fields", json=field, headers=supervisor.headers).status_code
        == 403
    )
    assert (
        client.post("/api/v1/custom-fields", json=field, headers=admin.headers).status_code == 201
    )
    assert client.get("/api/v1/custom-fields", headers=supervisor.headers).status_code == 200
    assert client.delete(f"{URL}/{created['id']}", headers=supervisor.headers).status_code == 204


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", URL, {"phone": "not a phone", "custom_fields": 3}),
        ("PATCH", f"{URL}/01M8SWPFXKKA0TCVZSXZE6GSWT", {"name": ["no"]}),
        ("POST", "/api/v1/tags", {}),
        ("POST", "/api/v1/custom-fields", {"key": 1}),
    ],
)
def test_a_request_without_a_valid_token_is_refused_before_its_body_is_read(
    client: TestClient, method: str, url: str, body: dict[str, object]
) -> None:
    # The routes take their transaction in the route (deps.transaction), but the sign-in
    # is still a dependency: a bad body from a stranger is a 401, never a 422 that would
    # tell them the API's fields.
    response = client.request(
        method, url, json=body, headers={"Authorization": "Bearer kontak_nope"}
    )
    assert response.status_code == 401
    assert "kontak token create" in response.json()["detail"]


def test_a_refused_create_keeps_nothing_of_its_transaction(api: TestClient) -> None:
    first = api.post(URL, json=contact_payload(tags=["vip"]))
    assert first.status_code == 201
    taken = api.post(URL, json=contact_payload(name="Other", tags=["brand-new"]))
    assert taken.status_code == 409
    assert {c["field"] for c in taken.json()["conflicts"]} >= {"phone"}
    # The tag the refused create made before its insert failed went with its rollback.
    assert [t["name"] for t in api.get("/api/v1/tags").json()] == ["vip"]


def test_a_deleted_token_or_user_is_refused_at_the_very_next_request(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    # The sign-in reads the token on every request (no cache to outlive a revocation).
    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    second = make_member(sessions, "agent2@acme.co.id", org="acme", role="agent")
    assert client.get(URL, headers=agent.headers).status_code == 200
    assert client.get(URL, headers=second.headers).status_code == 200
    with session_scope(sessions, write=True) as session:
        session.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(agent.token)))
        session.execute(delete(User).where(User.email == second.email))
    for member in (agent, second):
        refused = client.post(URL, json=contact_payload(), headers=member.headers)
        assert refused.status_code == 401
        assert "unknown or revoked" in refused.json()["detail"]
    assert client.get(URL, headers=admin.headers).json()["items"] == []


def test_a_changed_role_applies_to_the_very_next_request(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    created = client.post(URL, json=contact_payload(), headers=agent.headers).json()
    item = f"{URL}/{created['id']}"
    assert client.delete(item, headers=agent.headers).status_code == 403
    with session_scope(sessions, write=True) as session:
        session.execute(update(User).where(User.email == agent.email).values(role="supervisor"))
    assert client.delete(item, headers=agent.headers).status_code == 204
