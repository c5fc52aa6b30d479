"""`kontak import`, `export` and `template` as a user runs them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook
from sqlalchemy import Engine

from kontak.cli.imports import ROWS_SHOWN, SHOWN
from kontak.config import Settings
from kontak.db import search_index
from tests.cli.test_cli import run
from tests.factories import Member
from tests.files import TEMPLATE, csv_bytes

pytestmark = pytest.mark.usefixtures("engine")


def test_import_exit_codes_and_json(
    settings: Settings, admin: Member, tmp_path: Path, engine: Engine
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(
        csv_bytes([["nama", "no hp"], ["Budi", "0812-3456-7890"], ["Ani", "0813-1111-2222"]])
    )
    done = run(settings, "import", str(good), "--org", admin.org)
    assert done.returncode == 0, done.stderr
    assert "2 contacts created" in done.stderr
    with engine.connect() as connection:  # shown first, then indexed before the command ended
        if connection.dialect.name == "postgresql":
            assert search_index.trigram_ranges(connection) == []
        else:
            assert not (search_index.pending_ranges(connection) or {}).get("contact")

    again = run(settings, "import", str(good), "--org", admin.org, "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert report["job"]["status"] == "rejected"
    assert [(d["row"], d["key"]) for d in report["duplicates"]["existing"]] == [
        (2, "phone"),
        (3, "phone"),
    ]
    assert report["errors"] == []

    skipped = run(
        settings, "import", str(good), "--org", admin.org, "--on-existing", "skip", "--json"
    )
    assert skipped.returncode == 0
    assert json.loads(skipped.stdout)["job"]["skipped"] == 2

    dupes = tmp_path / "dupes.csv"
    dupes.write_bytes(
        csv_bytes(
            [["name", "phone"], ["A", "0814-1111-2222"], ["B", "+62 814 1111 2222"], ["C", "x"]]
        )
    )
    rejected = run(settings, "import", str(dupes), "--org", admin.org)
    assert rejected.returncode == 1
    assert "Duplicated in the file" in rejected.stderr
    assert "+6281411112222" in rejected.stderr
    assert "Invalid cells" in rejected.stderr

    dry = run(settings, "import", str(dupes.with_name("x.csv")), "--org", admin.org)
    assert dry.returncode == 2
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    unreadable = run(settings, "import", str(empty), "--org", admin.org)
    assert unreadable.returncode == 2
    assert "empty" in unreadable.stderr
    bad_mode = run(settings, "import", str(good), "--org", admin.org, "--on-existing", "merge")
    assert bad_mode.returncode == 2
    no_org = run(settings, "import", str(good), "--org", "nobody")
    assert no_org.returncode == 2
    assert "No organization" in no_org.stderr


def test_a_big_rejection_prints_the_first_of_each_and_how_many_more(
    settings: Settings, admin: Member, tmp_path: Path
) -> None:
    # The groups were all printed (a 1M-row file: ~10,000), the matches of stored contacts
    # cut at 200 without a word, a group's row numbers all on one line.
    stored = tmp_path / "stored.csv"
    stored.write_bytes(
        csv_bytes([["name", "phone"], *([f"Lama {i}", f"0815{i:08d}"] for i in range(SHOWN + 3))])
    )
    assert run(settings, "import", str(stored), "--org", admin.org).returncode == 0
    rows = [["name", "email", "phone"]]
    rows += [[f"Lama {i}", "", f"0815{i:08d}"] for i in range(SHOWN + 3)]  # stored
    rows += [[f"Sama {i}", "", "0812-0000-0001"] for i in range(ROWS_SHOWN + 5)]
    rows += [
        [f"Kembar {i} {j}", f"k{i}@contoh.id", f"0813{i:04d}00{j}"]
        for i in range(SHOWN + 2)
        for j in (1, 2)
    ]
    rows += [[f"Salah {i}", f"salah{i}@", ""] for i in range(SHOWN + 1)]
    big = tmp_path / "big.csv"
    big.write_bytes(csv_bytes(rows))
    done = run(settings, "import", str(big), "--org", admin.org)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "… and 3 more values; use --json for all of them." in lines
    assert "… and 3 more rows; use --json for all of them." in lines
    assert "… and 1 more cells; use --json for all of them." in lines
    assert " and 5 more" in done.stderr  # the rows of the group of 25
    assert "k0@contoh.id" in done.stderr
    full = json.loads(run(settings, "import", str(big), "--org", admin.org, "--json").stdout)
    assert len(full["duplicates"]["in_file"]) == SHOWN + 3
    assert len(full["duplicates"]["existing"]) == SHOWN + 3
    assert len(full["errors"]) == SHOWN + 1


def test_dry_run_writes_nothing(settings: Settings, admin: Member, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([["name", "email"], ["Budi", "budi@contoh.id"]]))
    dry = run(settings, "import", str(good), "--org", admin.org, "--dry-run", "--json")
    assert dry.returncode == 0
    assert json.loads(dry.stdout)["job"]["created"] == 1
    real = run(settings, "import", str(good), "--org", admin.org)
    assert real.returncode == 0, real.stderr


def test_template_and_export(settings: Settings, admin: Member, tmp_path: Path) -> None:
    csv_template = tmp_path / "t.csv"
    assert run(settings, "template", "-o", str(csv_template)).returncode == 0
    assert csv_template.read_text(encoding="utf-8-sig").strip() == ",".join(TEMPLATE)
    xlsx_template = tmp_path / "t.xlsx"
    assert (
        run(
            settings, "template", "-o", str(xlsx_template), "--format", "xlsx", "--org", admin.org
        ).returncode
        == 0
    )
    assert CalamineWorkbook.from_path(str(xlsx_template)).sheet_names == [
        "Contacts",
        "Instructions",
    ]

    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes([["name", "phone", "tags"], ["Budi", "0812-3456-7890", "VIP"]]))
    assert run(settings, "import", str(source), "--org", admin.org).returncode == 0
    out = tmp_path / "out.xlsx"
    exported = run(settings, "export", "-o", str(out), "--org", admin.org, "--format", "xlsx")
    assert exported.returncode == 0
    assert "Wrote 1 contact(s)" in exported.stderr
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert rows[0] == TEMPLATE
    assert rows[1][:3] == ["Budi", "", "+6281234567890"]
    assert rows[1][5] == "vip"


def test_export_of_more_contacts_than_a_sheet_holds(
    settings: Settings, admin: Member, tmp_path: Path
) -> None:
    """`kontak export --format xlsx` says a sheet is too small and what to do, with the
    usage exit code (run here with a sheet of one row under its header)."""
    source = tmp_path / "in.csv"
    source.write_bytes(
        csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"], ["Ani", "0812-3456-7891"]])
    )
    assert run(settings, "import", str(source), "--org", admin.org).returncode == 0
    out = tmp_path / "out.xlsx"
    small_sheet = (
        "import sys, kontak.files.xlsx_sheet as s; s.MAX_ROW = 1; "
        "from kontak.cli.main import app; sys.argv[0] = 'kontak'; app()"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            small_sheet,
            "export",
            "-o",
            str(out),
            "--org",
            admin.org,
            "--format",
            "xlsx",
        ],
        env={
            **os.environ,
            "KONTAK_DATABASE_URL": settings.resolved_database_url,
            "KONTAK_DATA_DIR": str(settings.data_dir),
            "NO_COLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Export as CSV" in done.stderr
    assert not out.exists()


def test_the_server_deletes_contacts_after_an_import_from_the_cli(
    settings: Settings, api: TestClient, tmp_path: Path
) -> None:
    # An import sets the search triggers aside inside its transaction (search_index.defer),
    # which changes SQLite's schema. A connection that read the schema before then failed
    # its first DELETE with "no such table: contact" (SQLite 3.40 re-preparing a DELETE
    # with foreign-key actions): a 500 for the user who deleted a contact in the server
    # after a `kontak import`, or after an import by another server process.
    budi = api.post("/api/v1/contacts", json={"name": "Budi", "phone": "0812-3456-7890"})
    assert budi.status_code == 201, budi.text
    ani = api.post("/api/v1/contacts", json={"name": "Ani", "phone": "0813-1111-2222"})
    assert api.delete(f"/api/v1/contacts/{ani.json()['id']}").status_code == 204
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([["nama", "no hp"], ["Eko", "0815-1111-2222"]]))
    done = run(settings, "import", str(good), "--org", "acme")
    assert done.returncode == 0, done.stderr
    deleted = api.delete(f"/api/v1/contacts/{budi.json()['id']}")
    assert deleted.status_code == 204, deleted.text
    assert api.get(f"/api/v1/contacts/{budi.json()['id']}").status_code == 404


def test_what_a_sqlite_import_wrote_is_in_the_database_file_when_the_command_ends(
    settings: Settings, admin: Member, tmp_path: Path, engine: Engine
) -> None:
    # The command copies the WAL into the database file in a thread of its own while it
    # indexes the new rows (as the server does), and once more as it ends. Before, only a
    # commit past 1,000 WAL pages or the last connection's close did: with another
    # connection open (a server), a small import stayed in the WAL alone.
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    database = Path(engine.url.database or "")
    other = sqlite3.connect(database)  # open, in no transaction: it blocks no checkpoint
    try:
        other.execute("PRAGMA journal_mode").fetchone()
        good = tmp_path / "good.csv"
        good.write_bytes(
            csv_bytes([["nama", "no hp"], ["Budi", "0812-3456-7890"], ["Ani", "0813-1111-2222"]])
        )
        done = run(settings, "import", str(good), "--org", admin.org)
        assert done.returncode == 0, done.stderr
        assert Path(f"{database}-wal").exists()  # still in use: not removed at the end
        copy = tmp_path / "file-alone.db"  # the database file without its WAL
        # Copied by another process: closing a descriptor of the file in this one would
        # drop every POSIX lock this process's SQLite connections hold on it, and the
        # next server's close would then take the WAL from under them (seen: the shared
        # test database "malformed" two tests later).
        subprocess.run(["cp", str(database), str(copy)], check=True)
        alone = sqlite3.connect(copy)
        try:
            names = alone.execute("SELECT name FROM contact ORDER BY name").fetchall()
        finally:
            alone.close()
        assert names == [("Ani",), ("Budi",)]
    finally:
        other.close()
