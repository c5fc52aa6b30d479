"""The server-rendered pages over HTTP: sign-in, CSRF, roles, settings, language."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kontak.tag.service import TAGS_SHOWN
from kontak.web.pages.common import PROBLEMS_SHOWN
from tests.api.imports import run_import
from tests.factories import Member, make_member
from tests.files import csv_bytes


def signed_in(client: TestClient, member: Member) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    response = client.post(
        "/sign-in",
        data={"email": member.email, "password": member.password, "next": "/contacts"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/contacts"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    page = client.get("/contacts")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_pages_need_sign_in_and_never_redirect_off_site(client: TestClient, admin: Member) -> None:
    for path in ("/contacts", "/contacts/new", "/settings", "/imports"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in?next=")
    wrong = client.post("/sign-in", data={"email": admin.email, "password": "nope"})
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    evil = client.post(
        "/sign-in",
        data={"email": admin.email, "password": admin.password, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/contacts"


def test_forms_need_the_csrf_token(client: TestClient, admin: Member) -> None:
    csrf = signed_in(client, admin)
    denied = client.post("/contacts/new", data={"name": "A", "phone": "0812-3456-7890"})
    assert denied.status_code == 403
    assert "CSRF" in denied.text
    created = client.post(
        "/contacts/new",
        data={"name": "A", "phone": "0812-3456-7890", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"].endswith("?notice=created")
    # The JSON API used by the import page accepts the cookie only with the CSRF header.
    no_header = client.post("/api/v1/contacts", json={"name": "B", "phone": "0813-1111-2222"})
    assert no_header.status_code == 403
    with_header = client.post(
        "/api/v1/contacts",
        json={"name": "B", "phone": "0813-1111-2222"},
        headers={"X-CSRF-Token": csrf},
    )
    assert with_header.status_code == 201


def test_manual_form_errors_and_conflicts_render_in_place(
    client: TestClient, admin: Member
) -> None:
    csrf = signed_in(client, admin)
    bad = client.post(
        "/contacts/new", data={"name": "Budi", "phone": "12", "email": "x@", "csrf_token": csrf}
    )
    assert bad.status_code == 422
    assert 'id="err-phone"' in bad.text
    assert 'id="err-email"' in bad.text
    assert 'value="Budi"' in bad.text
    client.post(
        "/contacts/new", data={"name": "Ani", "phone": "0812-3456-7890", "csrf_token": csrf}
    )
    clash = client.post(
        "/contacts/new", data={"name": "Ani 2", "phone": "+62 812 3456 7890", "csrf_token": csrf}
    )
    assert clash.status_code == 409
    assert 'id="conflict"' in clash.text
    assert "/contacts/" in clash.text


def test_the_form_offers_the_known_tags(client: TestClient, admin: Member) -> None:
    # Names only (the form never showed counts; counting reads every tag link).
    csrf = signed_in(client, admin)
    made = client.post(
        "/contacts/new",
        data={"name": "Ani", "phone": "0812-3456-7890", "tags": "vip, b2b", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    form = client.get("/contacts/new").text
    listed = re.search(r'<datalist id="known-tags">(.*?)</datalist>', form)
    assert listed
    assert re.findall(r'<option value="([^"]+)">', listed.group(1)) == ["b2b", "vip"]


def test_edit_and_delete_pages(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    csrf = signed_in(client, admin)
    created = client.post(
        "/contacts/new",
        data={"name": "Ani", "phone": "0812-3456-7890", "tags": "a, b", "csrf_token": csrf},
        follow_redirects=False,
    )
    detail = created.headers["location"].split("?")[0]
    edit = client.post(
        f"{detail}/edit",
        data={"name": "Ani Baru", "phone": "0812-3456-7890", "tags": "b", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert edit.status_code == 303
    page = client.get(detail)
    assert "Ani Baru" in page.text
    assert "Tersimpan" not in page.text

    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    other = TestClient(client.app)
    agent_csrf = signed_in(other, agent)
    assert 'class="danger"' not in other.get(detail).text
    forbidden = other.post(f"{detail}/delete", data={"csrf_token": agent_csrf})
    assert forbidden.status_code == 403
    deleted = client.post(f"{detail}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert deleted.headers["location"] == "/contacts?notice=deleted"
    assert client.get(detail).status_code == 404


def test_settings_tags_fields_members_tokens(client: TestClient, admin: Member) -> None:
    csrf = signed_in(client, admin)
    assert (
        client.post(
            "/settings/tags", data={"name": "VIP", "csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        client.post("/settings/tags", data={"name": "vip", "csrf_token": csrf}).status_code == 422
    )
    field = client.post(
        "/settings/custom-fields",
        data={"key": "tier", "type": "select", "options": "Gold, Silver", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert field.status_code == 303
    bad_field = client.post(
        "/settings/custom-fields", data={"key": "Phone", "type": "text", "csrf_token": csrf}
    )
    assert bad_field.status_code == 422
    member = client.post(
        "/settings/members", data={"email": "new@acme.co.id", "role": "agent", "csrf_token": csrf}
    )
    assert member.status_code == 200
    assert "password" in member.text.lower()
    token = client.post("/settings/tokens", data={"name": "zapier", "csrf_token": csrf})
    raw = re.search(r'<code id="new-token">([^<]+)</code>', token.text)
    assert raw
    api = client.get("/api/v1/tags", headers={"Authorization": f"Bearer {raw.group(1)}"})
    assert [t["name"] for t in api.json()] == ["vip"]
    page = client.get("/settings")
    assert "tier" in page.text
    assert "new@acme.co.id" in page.text


def test_language_follows_the_browser_then_the_choice(client: TestClient, admin: Member) -> None:
    page = client.get("/sign-in", headers={"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"})
    assert "Kata sandi" in page.text
    csrf = signed_in(client, admin)
    assert "Create New" in client.get("/contacts").text
    client.post("/language", data={"locale": "id", "next": "/contacts", "csrf_token": csrf})
    indonesian = client.get("/contacts")
    assert "Buat Baru" in indonesian.text
    assert '<html lang="id">' in indonesian.text


def test_sign_out_ends_the_session(client: TestClient, admin: Member) -> None:
    csrf = signed_in(client, admin)
    out = client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303

    assert client.get("/contacts", follow_redirects=False).status_code == 303


def test_field_errors_are_shown_in_the_users_language(client: TestClient, admin: Member) -> None:
    csrf = signed_in(client, admin)
    client.post("/language", data={"locale": "id", "next": "/contacts", "csrf_token": csrf})
    page = client.post("/contacts/new", data={"name": "", "phone": "12", "csrf_token": csrf})
    assert "Nama wajib diisi" in page.text
    assert "bukan nomor telepon yang valid" in page.text


def test_the_list_exports_the_contacts_it_shows(
    client: TestClient, admin: Member, sessions: sessionmaker[Session]
) -> None:
    """The contacts page links the export of its own filters; the link works with the
    page's sign-in (no token), and an agent (who may not export) sees no link."""
    csrf = signed_in(client, admin)
    for name, tag in (("Ani", "vip"), ("Budi", "lead")):
        created = client.post(
            "/contacts/new",
            data={
                "name": name,
                "phone": f"0812-3456-78{len(name)}{ord(name[0]) % 10}",
                "tags": tag,
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert created.status_code == 303, created.text
    page = client.get("/contacts", params={"tag": "vip"})
    link = re.search(r'href="([^"]+)" download id="export-csv"', page.text)
    assert link, page.text
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("/api/v1/contacts/export?format=csv&")
    exported = client.get(href)
    assert exported.status_code == 200
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2, lines
    assert lines[1].startswith("Ani,")
    assert 'id="export-xlsx"' in page.text

    agent = make_member(sessions, "agent@acme.co.id", org="acme", role="agent")
    client.post("/sign-out", data={"csrf_token": csrf})
    signed_in(client, agent)
    assert 'id="export' not in client.get("/contacts").text


def test_an_imports_page_lists_the_first_problems_and_points_at_the_report(
    client: TestClient, admin: Member
) -> None:
    # A 1M-row file with 1% duplicates and 1% invalid rows made this page 12 MB (~10,000
    # groups and as many invalid rows, all listed): 19 s to load in a browser.
    n = PROBLEMS_SHOWN + 2
    rows = [["name", "email", "phone"]]
    rows += [[f"Sama {i}", f"sama{i}@contoh.id", "0812-0000-0001"] for i in range(n)]
    for i in range(n):
        rows += [[f"Kembar {i} {j}", f"kembar{i}@contoh.id", f"0813{i:04d}000{j}"] for j in (1, 2)]
    rows += [[f"Salah {i}", f"salah{i}@", f"0815{i:08d}"] for i in range(n)]
    client.headers["Authorization"] = f"Bearer {admin.token}"
    job = run_import(client, csv_bytes(rows))
    del client.headers["Authorization"]
    assert job["status"] == "rejected"
    signed_in(client, admin)

    page = client.get(f"/imports/{job['id']}").text
    shared = re.findall(r"<h3>(phone|email) ([^<]+)</h3>", page)
    assert len(shared) == PROBLEMS_SHOWN
    assert shared[0] == ("phone", "+6281200000001")
    first_group = page.split("<h3>", 2)[1]
    assert first_group.count("<tr><td>") == PROBLEMS_SHOWN  # of its n rows
    assert page.count(f"Only the first {PROBLEMS_SHOWN} rows that share this value") == 1
    invalid = page.split("Invalid rows", 1)[1]
    assert invalid.count("<tr><td>") == PROBLEMS_SHOWN
    assert page.count(f"Only the first {PROBLEMS_SHOWN} are listed here") == 2
    assert f"/api/v1/imports/{job['id']}/report?format=csv" in page
    # The API still answers whole without a limit.
    client.headers["Authorization"] = f"Bearer {admin.token}"
    assert len(client.get(f"/api/v1/imports/{job['id']}/duplicates").json()["in_file"]) == n + 1
    assert len(client.get(f"/api/v1/imports/{job['id']}/errors").json()) == n


def test_pages_offer_the_first_tags_once_there_are_many(client: TestClient, admin: Member) -> None:
    # An import can make a tag a row: 200,000 tags made the contacts and settings pages
    # 10-15 MB (a choice, a chip each) and ~20 s to load.
    many = TAGS_SHOWN + 1
    rows = [["name", "phone", "tags"]]
    rows += [[f"Orang {i}", f"0857{i:08d}", f"pelanggan-{i:04d}"] for i in range(many)]
    client.headers["Authorization"] = f"Bearer {admin.token}"
    assert run_import(client, csv_bytes(rows))["status"] == "completed"
    del client.headers["Authorization"]
    signed_in(client, admin)

    listing = client.get("/contacts").text
    assert '<select id="tag"' not in listing
    assert '<input id="tag" name="tag"' in listing
    choices = re.findall(r'<option value="(pelanggan-\d+)">', listing)
    assert choices == [f"pelanggan-{i:04d}" for i in range(TAGS_SHOWN)]
    last = client.get("/contacts", params={"tag": f"pelanggan-{many - 1:04d}"}).text
    assert f"Orang {many - 1}<" in last
    assert "Orang 0<" not in last
    assert f'value="pelanggan-{many - 1:04d}" list="tag-choices"' in last

    form = client.get("/contacts/new").text
    assert len(re.findall(r'<option value="pelanggan-\d+">', form)) == TAGS_SHOWN
    settings = client.get("/settings").text
    assert len(re.findall(r'<span class="chip">pelanggan-\d+</span>', settings)) == TAGS_SHOWN
    assert f"The first {TAGS_SHOWN} of {many} tags, by name." in settings


def test_few_tags_are_a_choice_with_their_counts(client: TestClient, admin: Member) -> None:
    client.headers["Authorization"] = f"Bearer {admin.token}"
    body = {"name": "Ani", "phone": "0812-3456-7890", "tags": ["VIP", "b2b"]}
    assert client.post("/api/v1/contacts", json=body).status_code == 201
    del client.headers["Authorization"]
    signed_in(client, admin)
    listing = client.get("/contacts", params={"tag": "vip"}).text
    assert '<select id="tag" name="tag">' in listing
    assert '<option value="vip" selected>vip (1)</option>' in listing
    assert '<option value="b2b" >b2b (1)</option>' in listing
    assert "The first" not in client.get("/settings").text
