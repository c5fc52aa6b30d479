"""Search (`q`) finds the same contacts whether the trigram indexes answer it (SQLite, 3
characters or more) or LIKE does (PostgreSQL, short text), and the indexes follow every
change: create, update, delete, social accounts replaced, bulk import."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event

from kontak.contact import repository
from kontak.db import search_index
from tests.api.imports import run_import
from tests.files import csv_bytes

URL = "/api/v1/contacts"


def names(api: TestClient, q: str, **params: str | int) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        query: dict[str, str | int] = {"q": q, **params}
        if cursor:
            query["cursor"] = cursor
        response = api.get(URL, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        found += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


@contextmanager
def statements_run(api: TestClient) -> Iterator[list[tuple[str, Any]]]:
    """The statements (text, parameters) the app runs inside the block, in order."""
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    app_engine = api.app.state.engine  # type: ignore[attr-defined]
    event.listen(app_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(app_engine, "before_cursor_execute", seen)


@pytest.fixture
def people(api: TestClient) -> dict[str, str]:
    rows = [
        ("Budi Santoso", "budi.santoso@contoh.id", "081234567890", "budi_ig"),
        ("Siti Rahmawati", "siti@Mail.co.id", "+62 813 9999 0000", "sitirahma"),
        ("Dédé Ñandú", None, "0857 1111 2222", None),
        ('Ana "Q" 100%', "ana_q@contoh.id", None, "ana.q"),
    ]
    ids = {}
    for name, email, phone, handle in rows:
        body: dict[str, object] = {"name": name, "email": email, "phone": phone}
        if handle:
            body["social_accounts"] = [{"platform": "instagram", "handle": handle}]
        created = api.post(URL, json=body)
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    return ids


def test_substrings_of_names_emails_handles_and_phones(
    api: TestClient, people: dict[str, str]
) -> None:
    assert names(api, "santo") == ["Budi Santoso"]
    assert names(api, "SANTOSO") == ["Budi Santoso"]
    assert names(api, "mawati") == ["Siti Rahmawati"]
    assert names(api, "mail.co") == ["Siti Rahmawati"]  # stored email key is lower case
    assert names(api, "ti_r") == []  # "_" is a character, not a wildcard
    assert names(api, "ana_q") == ['Ana "Q" 100%']
    assert names(api, "ig") == ["Budi Santoso"]  # short: LIKE; the handle budi_ig
    assert names(api, "di_i") == ["Budi Santoso"]
    assert names(api, "tirah") == ["Siti Rahmawati"]  # the handle sitirahma
    assert names(api, '"Q" 1') == ['Ana "Q" 100%']
    assert names(api, "100%") == ['Ana "Q" 100%']
    assert names(api, "0857") == ["Dédé Ñandú"]  # national prefix, stored as +62857…
    assert names(api, "1111 2222") == ["Dédé Ñandú"]  # digits anywhere in the phone
    assert names(api, "+62813") == ["Siti Rahmawati"]
    assert names(api, "Dédé") == ["Dédé Ñandú"]
    assert names(api, "zzzq") == []
    assert names(api, "a") == ['Ana "Q" 100%', "Dédé Ñandú", "Siti Rahmawati", "Budi Santoso"]


def test_names_match_in_any_case_and_sqlite_lowers_them_only_for_other_letters(
    api: TestClient, people: dict[str, str], engine: Engine
) -> None:
    # SQLite's LIKE and lower() fold the case of ASCII letters only. The search lowered
    # the text and compared it with lower(name) (SQLAlchemy's ilike), so "Ñandú" was not
    # found by "ñandú", nor by "Ñandú" as written. Now a text with other letters is
    # compared with the name lowered by Python; an ASCII text with the name itself, as
    # LIKE ignores its case (1M contacts, two letters none holds: 0.82-0.86 -> 0.63 s).
    with statements_run(api) as statements:
        assert names(api, "SA") == ["Budi Santoso"]  # short: a walk
        assert names(api, "sAnToS") == ["Budi Santoso"]  # the index, then LIKE
    if engine.dialect.name == "sqlite":
        assert not [s for s, _ in statements if "lower(" in s.lower()]
    for text in ("ñandú", "Ñandú", "ÑANDÚ", "ñA", "Ñ", "dÉdÉ ñ"):
        assert names(api, text) == ["Dédé Ñandú"], text
    assert names(api, "ñandú x") == []
    exported = api.get("/api/v1/contacts/export", params={"format": "csv", "q": "ñA"})
    assert exported.status_code == 200
    assert "Dédé Ñandú" in exported.text
    assert "Budi" not in exported.text


def test_a_handle_is_found_written_with_its_at_sign(
    api: TestClient, people: dict[str, str]
) -> None:
    # Before: "@budi_ig" found nothing (handles are stored without the @).
    assert names(api, "@budi_ig") == ["Budi Santoso"]
    assert names(api, "@Budi_IG") == ["Budi Santoso"]
    assert names(api, "@sitirah") == ["Siti Rahmawati"]
    assert names(api, "@ig") == ["Budi Santoso"]  # short: LIKE alone
    assert sorted(names(api, "@contoh.id")) == ['Ana "Q" 100%', "Budi Santoso"]  # emails
    assert sorted(names(api, "@")) == ['Ana "Q" 100%', "Budi Santoso", "Siti Rahmawati"]


def test_the_indexes_follow_updates_and_deletes(api: TestClient, people: dict[str, str]) -> None:
    budi = people["Budi Santoso"]
    changed = api.patch(
        f"{URL}/{budi}",
        json={
            "name": "Bambang Wijaya",
            "email": "bambang@contoh.id",
            "social_accounts": [{"platform": "tiktok", "handle": "bambang_tt"}],
        },
    )
    assert changed.status_code == 200, changed.text
    assert names(api, "santoso") == []
    assert names(api, "budi_ig") == []
    assert names(api, "wijaya") == ["Bambang Wijaya"]
    assert names(api, "bambang@") == ["Bambang Wijaya"]
    assert names(api, "ang_t") == ["Bambang Wijaya"]
    assert api.delete(f"{URL}/{people['Siti Rahmawati']}").status_code == 204
    assert names(api, "rahma") == []
    assert names(api, "sitirahma") == []
    assert names(api, "813 9999") == []


NO_WALK_ON = 10**9


@pytest.mark.parametrize(
    ("few", "walk", "walk_on_from", "margin"),
    [
        (1, 1, NO_WALK_ON, 4),
        (1, 3, NO_WALK_ON, 4),
        (1, repository.WALK_FIRST, NO_WALK_ON, 4),
        (repository.FEW_MATCHES, 3, NO_WALK_ON, 4),
        (repository.FEW_MATCHES, 3, 1, 4),
        (repository.FEW_MATCHES, 3, 1, 0),
        (1, 3, 1, 0),
    ],
    ids=[
        "many, one newest",
        "many, newest too few",
        "many, newest enough",
        "few",
        "newest dense, walk on",
        "newest dense, walk on falls short, few",
        "newest dense, walk on falls short, many",
    ],
)
def test_many_or_few_matches_page_the_same(
    api: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    few: int,
    walk: int,
    walk_on_from: int,
    margin: int,
) -> None:
    # Every way of reading a page (LIKE over the newest contacts first; where those hold
    # part of a page densely, on PostgreSQL a walk on over the older ones; where that
    # falls short, the indexes' matches, few looked up or many walked) gives every match
    # once, newest first, across pages.
    monkeypatch.setattr(repository, "FEW_MATCHES", few)
    monkeypatch.setattr(repository, "WALK_FIRST", walk)
    monkeypatch.setattr(repository, "WALK_ON_FROM", walk_on_from)
    monkeypatch.setattr(repository, "WALK_ON_MARGIN", margin)
    for i in range(7):
        body: dict[str, Any] = {"name": f"Pelanggan {i}", "phone": f"08123400{i:04d}"}
        if i == 4:  # found by its handle alone
            body["name"] = "Orang Empat"
            body["social_accounts"] = [{"platform": "instagram", "handle": "pelanggan.empat"}]
        assert api.post(URL, json=body).status_code == 201
        if i % 3 == 2:  # others in between: the newest contacts are not all matches
            other = {"name": f"Lain {i}", "phone": f"08129999{i:04d}"}
            assert api.post(URL, json=other).status_code == 201
    api.post(URL, json={"name": "Lain", "phone": "081299990000"})
    expected = [f"Pelanggan {i}" if i != 4 else "Orang Empat" for i in range(6, -1, -1)]
    assert names(api, "langgan", limit=3) == expected
    assert names(api, "0812340", limit=2) == expected
    assert names(api, "langgan", limit=3, tag="none") == []


def test_imported_contacts_are_searchable(api: TestClient) -> None:
    header = ["name", "email", "phone", "instagram"]
    rows = [
        [f"Impor Nomor {i}", f"impor{i}@contoh.id", f"0813{i:08d}", f"impor_{i}"] for i in range(30)
    ]
    job = run_import(api, csv_bytes([header, *rows]))
    assert job["status"] == "completed"
    assert names(api, "nomor 2") == [
        f"Impor Nomor {i}" for i in (29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 2)
    ]
    assert names(api, "impor_17") == ["Impor Nomor 17"]
    assert names(api, "impor5@") == ["Impor Nomor 5"]


def test_imported_contacts_are_found_and_changed_before_the_index_catches_up(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An import's rows are indexed after its commit: until then LIKE answers (SQLite) or
    # the trigram indexes' pending lists are read too (PostgreSQL), and changes made
    # meanwhile are what the catch-up indexes.
    monkeypatch.setattr(search_index, "catch_up", lambda engine: 0)
    header = ["name", "phone", "instagram"]
    rows = [[f"Tertunda {i}", f"0813{i:08d}", f"tunda_{i}"] for i in range(12)]
    assert run_import(api, csv_bytes([header, *rows]))["status"] == "completed"
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            assert search_index.pending_ranges(conn)
        else:  # the import's contacts wait in a range of ids, out of the trigram table
            assert len(search_index.trigram_ranges(conn)) == 1
            assert _trigram_rows(conn) == []
    assert names(api, "tunda 1") == ["Tertunda 11", "Tertunda 10", "Tertunda 1"]
    assert names(api, "tunda_7") == ["Tertunda 7"]
    first = api.get(URL, params={"q": "Tertunda 0"}).json()["items"][0]
    assert api.patch(f"{URL}/{first['id']}", json={"name": "Berubah Nol"}).status_code == 200
    last = api.get(URL, params={"q": "Tertunda 11"}).json()["items"][0]
    assert api.delete(f"{URL}/{last['id']}").status_code == 204
    monkeypatch.undo()
    # SQLite: the rows of the pending ranges; PostgreSQL: the pages of the trigram
    # indexes' pending lists, which the import's COPYs filled instead of merging them.
    assert search_index.catch_up(engine) > 0
    if sqlite:
        with engine.connect() as conn:
            assert search_index.pending_ranges(conn) == {}
        with engine.begin() as conn:  # SQLite's own check: index and table agree
            for index in ("contact_search", "social_search"):
                conn.exec_driver_sql(
                    f"INSERT INTO {index} ({index}, rank) VALUES ('integrity-check', 1)"
                )
    if not sqlite:
        with engine.connect() as conn:
            assert search_index.trigram_ranges(conn) == []
            assert _trigram_rows(conn) == _contact_rows(conn)
    assert names(api, "berubah") == ["Berubah Nol"]
    assert names(api, "tertunda 0") == []
    assert names(api, "tunda 1") == ["Tertunda 10", "Tertunda 1"]
    assert names(api, "tunda_11") == []


def test_sqlite_answers_from_the_index(
    api: TestClient, people: dict[str, str], engine: Engine
) -> None:
    # Proof that the index, not a scan, answers on SQLite: emptied, it finds nothing (and
    # short text, read with LIKE, still does); the rebuild of `kontak db rebuild-search`
    # brings it back.
    if engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's; PostgreSQL's are checked below")
    rebuild = "INSERT INTO contact_search (contact_search) VALUES ('rebuild')"
    assert search_index.catch_up(engine) >= len(people)  # created contacts wait for it
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO contact_search (contact_search) VALUES ('delete-all')"
            )
        assert names(api, "santo") == []
        assert names(api, "so") == ["Budi Santoso"]
    finally:
        # An index out of step with its table must not meet a delete (SQLite reports the
        # file as malformed): rebuild before anything else happens.
        with engine.begin() as conn:
            conn.exec_driver_sql(rebuild)
    assert names(api, "santo") == ["Budi Santoso"]


def test_new_contacts_are_found_before_the_index_catches_up(
    api: TestClient, people: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Created contacts wait a second for the index (revision 0007); meanwhile a search
    # reads them directly and the rest from the index. Proof of both: with the index
    # emptied, only the new contacts (by name, and by handle) are found.
    if engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 index is SQLite's")
    search_index.catch_up(engine)
    monkeypatch.setattr(search_index, "catch_up", lambda engine: 0)  # the server's round
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO contact_search (contact_search) VALUES ('delete-all')"
            )
        for body in (
            {"name": "Santoso Baru", "phone": "081300000001"},
            {
                "name": "Rina",
                "phone": "081300000002",
                "social_accounts": [{"platform": "instagram", "handle": "santoso_ig"}],
            },
        ):
            assert api.post(URL, json=body).status_code == 201
        with engine.connect() as conn:
            assert search_index.pending_ranges(conn)
        assert names(api, "santo") == ["Rina", "Santoso Baru"]
    finally:
        with engine.begin() as conn:
            search_index.rebuild(conn)
    assert names(api, "santo") == ["Rina", "Santoso Baru", "Budi Santoso"]


def test_a_big_import_refreshes_the_planner_statistics(api: TestClient, engine: Engine) -> None:
    # Without them SQLite walks an organization's whole index for a handful of matches,
    # and PostgreSQL sorts the whole organization for a first page.
    from kontak.import_job import runner

    header = ["name", "phone"]
    rows = [[f"Statistik {i}", f"0813{i:08d}"] for i in range(runner.ANALYZE_FROM)]
    job = run_import(api, csv_bytes([header, *rows]))
    assert job["status"] == "completed"
    # The refresh follows the job's completion (nobody waits for it): wait for it here.
    if engine.dialect.name == "sqlite":
        query = "SELECT tbl FROM sqlite_stat1 WHERE tbl = 'contact'"
    else:
        query = (
            "SELECT relname FROM pg_stat_user_tables"
            " WHERE relname = 'contact' AND last_analyze IS NOT NULL"
        )
    stats: list[Any] = []
    for _ in range(300):
        with engine.connect() as conn:
            exists = (
                engine.dialect.name != "sqlite"
                or conn.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                ).first()
            )
            stats = list(conn.exec_driver_sql(query).all()) if exists else []
        if stats:
            break
        time.sleep(0.1)
    assert stats
    if engine.dialect.name == "sqlite":
        # None for the search indexes' own tables: taken before the import's rows were
        # indexed, they made SQLite scan a whole index to delete a merged segment.
        with engine.connect() as conn:
            figures = conn.exec_driver_sql(
                "SELECT tbl FROM sqlite_stat1 WHERE tbl LIKE '%\\_search\\_%' ESCAPE '\\'"
            ).all()
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN DELETE FROM contact_search_data WHERE id >= ? AND id <= ?",
                (1, 2),
            ).all()
        assert figures == []
        assert "USING INTEGER PRIMARY KEY" in str(plan), plan


def _trigram_rows(conn: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.exec_driver_sql(
            "SELECT contact_id, organization_id, name, email_key, phone FROM contact_trigram"
            " ORDER BY contact_id"
        )
    ]


def _contact_rows(conn: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.exec_driver_sql(
            "SELECT id, organization_id, name, email_key, phone FROM contact ORDER BY id"
        )
    ]


def test_postgresql_trigram_table_follows_every_write_and_answers(
    api: TestClient, people: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Migration 0008: the trigrams live in a table of their own, kept by triggers on
    # single writes. With a walk of one contact, the table (not LIKE) answers the search.
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(repository, "WALK_FIRST", 1)
    budi = people["Budi Santoso"]
    with engine.connect() as conn:
        assert len(_trigram_rows(conn)) == 4
        assert _trigram_rows(conn) == _contact_rows(conn)
    changed = api.patch(f"{URL}/{budi}", json={"name": "Budi Prasetyo", "phone": "0811 2222 333"})
    assert changed.status_code == 200, changed.text
    assert api.delete(f"{URL}/{people['Dédé Ñandú']}").status_code == 204
    with engine.connect() as conn:
        assert len(_trigram_rows(conn)) == 3
        assert _trigram_rows(conn) == _contact_rows(conn)
    assert names(api, "prasetyo") == ["Budi Prasetyo"]
    assert names(api, "santoso") == ["Budi Prasetyo"]  # by the email, unchanged
    assert names(api, "2222333") == ["Budi Prasetyo"]
    assert names(api, "34567890") == []  # the old phone
    assert names(api, "dédé") == []
    with engine.begin() as conn:  # proof that the table answers: emptied, nothing is found
        conn.exec_driver_sql("DELETE FROM contact_trigram")
    assert names(api, "prasetyo") == []


def test_few_matches_are_read_once_for_a_page(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL, where the newest contacts hold too few matches: the matches the indexes
    # give are read up to FEW_MATCHES + 1, and when they are few the page is read from
    # that list. Before, they were counted and then read again by the page (a text no
    # index answers, 1M contacts: two scans of ~0.4 s each, q=qz 0.8-0.9 -> 0.4-0.57 s).
    monkeypatch.setattr(repository, "WALK_FIRST", 2)
    created = []
    for i in range(12):
        name = f"Pelangi {i}" if i % 4 == 1 else f"Orang {i}"
        body: dict[str, Any] = {"name": name, "phone": f"0815{i:08d}"}
        if i == 6:  # found by its handle alone, once more by its name
            body |= {
                "name": "Pelangi Enam",
                "social_accounts": [{"platform": "tiktok", "handle": "pelangi6"}],
            }
        assert api.post(URL, json=body).status_code == 201
        created.append(body["name"])
    matches = [n for n in reversed(created) if n.startswith("Pelangi")]
    for text in ("pelangi", "el"):  # an index's matches; two letters, read by a scan
        found: list[str] = []
        reads_per_page = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"q": text, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            with statements_run(api) as statements:
                page = api.get(URL, params=params).json()
            found += [c["name"] for c in page["items"]]
            reads_per_page.append(len([s for s, _ in statements if "FROM contact_trigram " in s]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert found == matches, text
        if engine.dialect.name == "postgresql":
            assert max(reads_per_page) == 1, reads_per_page  # some page gathered, once
    assert names(api, "pelangi", limit=2, channel="sms") == []


def test_a_search_walks_on_where_the_newest_match_densely_and_gathers_where_they_crowd(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the newest contacts hold part of a page densely, the search walks on over the
    # older ones instead of gathering the candidates first (1M contacts, a common name:
    # PostgreSQL's count 20-29 ms, SQLite's lists of matches 39 ms). Where the matches
    # crowd among the newest, the walk on stops at its window and the candidates are
    # gathered: the same pages either way.
    monkeypatch.setattr(repository, "WALK_FIRST", 10)
    monkeypatch.setattr(repository, "WALK_ON_FROM", 3)
    monkeypatch.setattr(repository, "FEW_MATCHES", 1)  # SQLite: many, whatever the count
    # PostgreSQL reads the candidates from the trigram table; SQLite walks the lists of them.
    gathering = (
        "FROM contact_trigram " if engine.dialect.name == "postgresql" else "+contact.rowid IN"
    )
    # Oldest first: "Kartika" every 3rd contact all along; "Melati" among the oldest ten
    # and the newest ten only, further back than the walk on's window reaches.
    created = []
    for i in range(150):
        name = f"Orang {i}"
        if i % 3 == 0:
            name = f"Kartika {i}"
        elif i % 3 == 1 and (i < 10 or i >= 140):
            name = f"Melati {i}"
        body: dict[str, Any] = {"name": name, "phone": f"0813{i:08d}"}
        if i % 3 != 1:  # every Kartika, and others: the filters apply along the walk on
            body |= {"tags": ["vip"], "channel": "email"}
        if i % 2:  # a handle for half of them: the walk on looks each contact's up
            body["social_accounts"] = [{"platform": "instagram", "handle": f"akun_{i}"}]
        assert api.post(URL, json=body).status_code == 201
        created.append(name)
    newest_first = created[::-1]
    with statements_run(api) as statements:
        kartika = [n for n in newest_first if n.startswith("Kartika")]
        first = api.get(URL, params={"q": "kartika", "limit": 8}).json()["items"]
        assert [c["name"] for c in first] == kartika[:8]
        assert not [s for s, _ in statements if gathering in s]  # walked on
        assert names(api, "kartika", limit=8) == kartika
        assert names(api, "kartika", limit=8, tag="vip", channel="email") == kartika
        assert names(api, "kartika", limit=8, tag="lead") == []
        # Handles: "kun_1" is in akun_1 and akun_1x (odd), found by the handle alone.
        by_handle = [n for i, n in enumerate(created) if i % 2 and str(i).startswith("1")]
        assert names(api, "kun_1", limit=8) == by_handle[::-1]
        statements.clear()
        melati = [n for n in newest_first if n.startswith("Melati")]
        assert names(api, "melati", limit=8) == melati
        assert [s for s, _ in statements if gathering in s]  # the walk on fell short


def test_postgresql_an_import_that_updates_contacts_keeps_their_trigrams(
    api: TestClient, people: dict[str, str], engine: Engine
) -> None:
    # The import's COPYs leave the trigram table alone; its updates of matched contacts,
    # in the same transaction after them, do not.
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    data = csv_bytes(
        [["name", "phone"], ["Budi Diperbarui", "081234567890"], ["Baru", "081377778888"]]
    )
    assert run_import(api, data, on_existing="update")["status"] == "completed"
    search_index.catch_up(engine)
    with engine.connect() as conn:
        assert _trigram_rows(conn) == _contact_rows(conn)
        assert "Budi Diperbarui" in {r[2] for r in _trigram_rows(conn)}


def test_postgresql_has_the_trigram_indexes(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    from kontak.db.base import TRIGRAM_INDEXES

    with engine.connect() as conn:
        found = {
            name
            for (name,) in conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE strpos(indexdef, 'gin_trgm_ops') > 0"
            )
        }
    assert found == set(TRIGRAM_INDEXES)


def test_the_tag_filter_pages_from_the_tags_links_past_untagged_newer_contacts(
    api: TestClient, engine: Engine
) -> None:
    # The tagged contacts are the oldest and a few in between; many newer ones have no tag
    # (a big import of new leads). Each page is read from the tag's links, newest contact
    # first, whatever else is filtered, and the same tag name in another organization or
    # a tag of another name does not count.
    created: list[tuple[str, bool, str]] = []
    for i in range(40):
        tagged = i < 5 or i in (20, 31)
        channel = "email" if i % 2 else "sms"
        body: dict[str, Any] = {"name": f"Kontak {i}", "phone": f"0815{i:08d}"}
        body |= {"channel": channel, "tags": ["vip"] if tagged else ["lead"]}
        if i % 3 == 0:
            body["social_accounts"] = [{"platform": "instagram", "handle": f"kontak_ig{i}"}]
        assert api.post(URL, json=body).status_code == 201
        created.append((f"Kontak {i}", tagged, channel))
    newest_first = created[::-1]
    vip = [name for name, tagged, _ in newest_first if tagged]
    assert names(api, "", tag="vip", limit=2) == vip
    assert names(api, "", tag="vip", channel="email", limit=2) == [
        name for name, tagged, channel in newest_first if tagged and channel == "email"
    ]
    assert names(api, "kontak 2", tag="vip", limit=1) == ["Kontak 20", "Kontak 2"]
    assert names(api, "ig3", tag="vip", limit=1) == ["Kontak 3"]  # by its handle
    assert names(api, "", tag="nobody") == []

    with statements_run(api) as run:
        assert names(api, "", tag="vip", limit=3) == vip
    statements = [(s, p) for s, p in run if "contact_tag.contact_id DESC" in s]
    assert len(statements) == 3  # every page read from the links (one batch each)
    if engine.dialect.name == "postgresql":
        # The links' order can be the index's: with sorts and whole-table reads priced out,
        # the plan reads the index backwards. (Left to its costs, the planner's choice for
        # a table this small follows whatever statistics and index pages earlier tests
        # left behind, since the tests empty the tables by DELETE: it sorted two rows
        # after a test had imported 70,000 tags of one link each.)
        with engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            plan = conn.exec_driver_sql("EXPLAIN " + statements[1][0], statements[1][1]).scalars()
            steps = "\n".join(plan)
        assert "Scan Backward using ix_contact_tag_tag_id_contact_id" in steps, steps
        assert "Sort" not in steps, steps


def test_a_search_whose_matches_the_newest_contacts_do_not_hold_pages_the_same(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many matches, all older than a block of newer contacts holding none of them (a big
    # import of new leads): PostgreSQL reads each trigram index's newest matches instead
    # of walking the block, in batches where a channel leaves out some of them. The pages
    # are the same as a walk's, handles and pages' bounds included.
    monkeypatch.setattr(repository, "WALK_FIRST", 5)
    monkeypatch.setattr(repository, "WALK_ON_AT_MOST", 10)
    monkeypatch.setattr(repository, "FEW_MATCHES", 2)
    created: list[tuple[str, str]] = []
    for i in range(30):
        name, channel = f"Wulan {i}", "sms" if i % 2 else "email"
        body: dict[str, Any] = {"phone": f"0816{i:08d}", "channel": channel}
        if i % 5 == 4:  # found by its handle alone
            name = f"Akun {i}"
            body["social_accounts"] = [{"platform": "instagram", "handle": f"wulan.{i}"}]
        assert api.post(URL, json=body | {"name": name}).status_code == 201
        created.append((name, channel))
    for i in range(40):  # newer, none of them a match
        assert api.post(URL, json={"name": f"Baru {i}", "phone": f"0817{i:08d}"}).status_code == 201
    with statements_run(api) as statements:
        newest_first = created[::-1]
        assert names(api, "wulan", limit=4) == [name for name, _ in newest_first]
        sms = [name for name, channel in newest_first if channel == "sms"]
        assert names(api, "wulan", limit=4, channel="sms") == sms
        assert names(api, "wulan", limit=4, channel="phone") == []
    if engine.dialect.name == "postgresql":
        newest = [s for s, _ in statements if "contact_trigram" in s and "DESC" in s]
        assert newest, statements
        assert all("LIMIT" in s for s in newest)


def test_a_two_letter_search_past_a_block_without_it_reads_the_accounts_once(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two letters have no index to gather from: past a block of newer contacts without
    # them, the walk is long, and both engines read the organization's accounts that hold
    # the text once instead of looking up each contact's own (SQLite since session 26:
    # 1M contacts, two letters none holds, 1.03 -> 0.69 s). The pages are the same.
    monkeypatch.setattr(repository, "WALK_FIRST", 5)
    monkeypatch.setattr(repository, "FEW_MATCHES", 2)
    created: list[str] = []
    for i in range(12):
        name = f"Wx Lama {i}"
        body: dict[str, Any] = {"phone": f"0818{i:08d}"}
        if i % 3 == 2:  # found by its handle alone
            name = f"Akun {i}"
            body["social_accounts"] = [{"platform": "tiktok", "handle": f"qwx_{i}"}]
        assert api.post(URL, json=body | {"name": name}).status_code == 201
        created.append(name)
    for i in range(15):  # newer, none of them a match (an account without the text too)
        newer: dict[str, Any] = {"name": f"Baru {i}", "phone": f"0819{i:08d}"}
        if i == 3:
            newer["social_accounts"] = [{"platform": "tiktok", "handle": "lain"}]
        assert api.post(URL, json=newer).status_code == 201
    with statements_run(api) as statements:
        assert names(api, "wx", limit=4) == created[::-1]
        assert names(api, "wx", limit=4, channel="sms") == []  # a channel: walked as before
    pages = [s for s, _ in statements if "ORDER BY contact.id DESC" in s]
    # The organization's accounts with the text, not each contact's own.
    read_once = re.compile(
        r"contact\.id IN \(SELECT social_account\.contact_id\s+FROM social_account\s+"
        r"WHERE social_account\.organization_id"
    )
    assert any(read_once.search(s) for s in pages), pages


def test_a_channel_few_contacts_hold_is_read_from_its_index_with_a_tag_or_a_text(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A channel that few contacts hold, with a tag or a text: PostgreSQL reads the
    # channel's contacts from its index (migration 0013) and checks each one, instead of
    # walking the tag's links or the text's matches and checking each one's channel (1M
    # contacts, a channel none holds: 2.5 s with a tag, 1.9 s with a common name). The
    # pages are the same as a walk's; a channel that many hold goes the old way.
    monkeypatch.setattr(repository, "FEW_MATCHES", 5)
    created: list[tuple[str, str, bool]] = []
    for i in range(30):
        channel = "telegram" if i in (2, 9, 14, 17, 25) else "whatsapp"
        name = f"Sari {i}" if i % 2 == 0 else f"Joko {i}"
        body: dict[str, Any] = {"name": name, "phone": f"0821{i:08d}", "channel": channel}
        body["tags"] = ["vip"] if i % 3 != 1 else []
        if i == 9:  # found by its handle alone
            body["social_accounts"] = [{"platform": "instagram", "handle": "sari.joko"}]
        assert api.post(URL, json=body).status_code == 201
        created.append((name, channel, i % 3 != 1))

    def expected(channel: str, text: str = "", vip: bool = False) -> list[str]:
        return [
            n
            for i, (n, ch, tagged) in reversed(list(enumerate(created)))
            if ch == channel and (tagged or not vip) and (text in n.lower() or (text and i == 9))
        ]

    with statements_run(api) as statements:
        assert names(api, "", tag="vip", channel="telegram", limit=1) == expected(
            "telegram", vip=True
        )
        assert names(api, "sari", channel="telegram", limit=1) == expected("telegram", "sari")
        assert names(api, "sari", tag="vip", channel="telegram", limit=2) == expected(
            "telegram", "sari", vip=True
        )
        assert names(api, "", tag="vip", channel="facebook") == []
        assert names(api, "joko", channel="facebook") == []
    # Many hold the other channel: the same answers the old way.
    assert names(api, "sari", tag="vip", channel="whatsapp", limit=3) == expected(
        "whatsapp", "sari", vip=True
    )
    if engine.dialect.name == "postgresql":
        run = "\n".join(s for s, _ in statements)
        assert "contact_tag.contact_id DESC" not in run  # not from the tag's links
        assert "contact_trigram" not in run  # nor from the text's matches
        assert "contact.channel = " in run


def test_a_channel_is_walked_on_the_listing_index_that_holds_it(
    api: TestClient, engine: Engine
) -> None:
    # SQLite has no index of each channel's contacts: a channel filter walks the contacts
    # newest first. The listing index holds the channel (migration 0014), so the walk
    # tests it there and reads a contact's row only when it matches (1M contacts, a
    # channel none holds: channel=facebook 0.45 -> 0.12 s, q=budi&channel=facebook 0.7 ->
    # 0.13 s). The pages are the same as before on both engines.
    created: list[tuple[str, str]] = []
    for i in range(24):
        channel = "telegram" if i in (3, 10, 11, 20) else "whatsapp" if i % 2 else "sms"
        name = f"Sari {i}" if i % 3 else f"Budi {i}"
        body = {"name": name, "phone": f"0824{i:08d}", "channel": channel}
        assert api.post(URL, json=body).status_code == 201
        created.append((name, channel))

    def expected(channel: str, text: str = "") -> list[str]:
        return [n for n, ch in reversed(created) if ch == channel and text in n.lower()]

    with statements_run(api) as statements:
        assert names(api, "", channel="telegram", limit=2) == expected("telegram")
        assert names(api, "sari", channel="telegram", limit=1) == expected("telegram", "sari")
        assert names(api, "bu", channel="sms", limit=3) == expected("sms", "bu")
        assert names(api, "", channel="facebook") == []
        assert names(api, "budi", channel="twitter") == []
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL reads a channel from its own index (migration 0013)
    walks = [
        (statement, parameters)
        for statement, parameters in statements
        if "contact.channel = " in statement and "ORDER BY contact.id DESC" in statement
    ]
    with engine.connect() as conn:
        plans = [
            " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            for statement, parameters in walks
        ]
    # Each walk reads the listing index; a text's few candidates (the FTS5 index caught
    # up) are read by rowid instead.
    walked = [plan for plan in plans if "INDEX ix_contact_organization_id_id_channel" in plan]
    assert walked, plans
    assert all(plan in walked or "(rowid=?)" in plan for plan in plans), plans


def test_filters_whose_sources_disagree_page_from_the_one_reaching_furthest_back(
    api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Older contacts by email, some tagged "promo" or "vip"; newer ones, a big import of
    # leads, all by WhatsApp and tagged "promo". PostgreSQL reads the candidates of each
    # filter (the channel's index, the tag's links, the text's matches) in turns and
    # checks those of the one reaching furthest back: before, a tag with another filter
    # read every link of the tag (1M + 374,000 contacts: channel=email&tag=promo 2.6 s),
    # and a text read all its matches again for every batch (q=baru&channel=email 19 s).
    # The pages are the same as a walk's on both engines.
    monkeypatch.setattr(repository, "WALK_FIRST", 5)
    monkeypatch.setattr(repository, "FEW_MATCHES", 2)
    monkeypatch.setattr(repository, "FIRST_BATCH_PAGES", 1)
    monkeypatch.setattr(repository, "BATCH_AT_MOST", 8)
    monkeypatch.setattr(repository, "JIT_OFF_FROM", 1)  # PostgreSQL: past it, without JIT
    created: list[tuple[str, str, set[str]]] = []
    for i in range(30):
        name = f"Lama {i}" if i != 7 else "Akun 7"  # found by its handle alone
        tags = {"promo"} if i % 3 == 0 else {"vip"} if i % 3 == 1 else set()
        body: dict[str, Any] = {"name": name, "phone": f"0822{i:08d}", "channel": "email"}
        if i == 7:
            body["social_accounts"] = [{"platform": "instagram", "handle": "lama.tujuh"}]
        assert api.post(URL, json=body | {"tags": sorted(tags)}).status_code == 201
        created.append((name, "email", tags))
    for i in range(50):  # more matches than a first batch of 16 pages of 1 held before
        body = {"name": f"Baru {i}", "phone": f"0823{i:08d}", "channel": "whatsapp"}
        assert api.post(URL, json=body | {"tags": ["promo"]}).status_code == 201
        created.append((f"Baru {i}", "whatsapp", {"promo"}))

    def expected(text: str = "", channel: str = "", tag: str = "") -> list[str]:
        return [
            name
            for name, ch, tags in reversed(created)
            if (not text or text in name.lower() or (text == "lama" and name == "Akun 7"))
            and (not channel or ch == channel)
            and (not tag or tag in tags)
        ]

    with statements_run(api) as statements:
        assert names(api, "baru", channel="email", limit=1) == []
    if engine.dialect.name == "postgresql":
        # The text's matches read twice at most: a top-N sort, then a cursor.
        reads = [s for s, _ in statements if "contact_trigram" in s and "DESC" in s]
        assert 1 <= len(reads) <= 2, reads
        assert "SET LOCAL jit = off" in [s for s, _ in statements]
    cases = [
        ("", "email", "promo"),
        ("lama", "", "promo"),
        ("lama", "email", "promo"),
        ("lama", "email", ""),
        ("baru", "", "vip"),
        ("baru", "whatsapp", "promo"),
        ("", "whatsapp", "vip"),
        ("akun", "email", "vip"),
    ]
    for text, channel, tag in cases:
        params = {k: v for k, v in (("channel", channel), ("tag", tag)) if v}
        assert names(api, text, limit=3, **params) == expected(text, channel, tag), params
    assert expected("lama", "email", "promo")  # the cases are not all empty
