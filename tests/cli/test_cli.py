"""The ``kontak`` command as a user runs it: a real process, real exit codes and streams."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kontak.config import Settings
from kontak.web.app import create_app
from tests.factories import write_held

KONTAK = [sys.executable, "-m", "kontak.cli"]


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KONTAK_DATABASE_URL": settings.resolved_database_url,
        "KONTAK_DATA_DIR": str(settings.data_dir),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [*KONTAK, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.usefixtures("engine")
def test_user_and_token_create_give_a_working_token(settings: Settings) -> None:
    created = run(
        settings, "user", "create", "lead@acme.co.id", "--org", "acme", "--role", "supervisor"
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("password: ")
    assert len(created.stdout.split(": ", 1)[1].strip()) >= 12

    token = run(settings, "token", "create", "lead@acme.co.id", "--name", "zapier")
    assert token.returncode == 0, token.stderr
    lines = token.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kontak_")

    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {lines[0]}"}
        response = client.post(
            "/api/v1/contacts", json={"name": "Ani", "phone": "0813-1111-2222"}, headers=headers
        )
        assert response.status_code == 201
        assert (
            client.delete(f"/api/v1/contacts/{response.json()['id']}", headers=headers).status_code
            == 204
        )


def test_db_rebuild_search_brings_lost_index_rows_back(
    settings: Settings, engine: Engine, api: TestClient
) -> None:
    # SQLite: the FTS5 indexes; PostgreSQL: the trigram table of migration 0008.
    for i in range(3):
        body = {"name": f"Dibangun {i}", "phone": f"0813555500{i:02d}"}
        assert api.post("/api/v1/contacts", json=body).status_code == 201
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:
            conn.exec_driver_sql(
                "INSERT INTO contact_search (contact_search) VALUES ('delete-all')"
            )
        else:
            conn.exec_driver_sql("DELETE FROM contact_trigram")
    done = run(settings, "db", "rebuild-search")
    assert done.returncode == 0, done.stderr
    assert "rebuilt" in done.stderr
    with engine.connect() as conn:
        if sqlite:
            found = conn.exec_driver_sql(
                'SELECT count(*) FROM contact_search WHERE contact_search MATCH \'"ban" AND "gun"\''
            ).scalar()
        else:
            found = conn.exec_driver_sql(
                "SELECT count(*) FROM contact_trigram WHERE name LIKE 'Dibangun %%'"
            ).scalar()
    assert found == 3


def test_db_rebuild_search_waits_for_a_writer_on_sqlite(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # A server's writes (its indexer commits every second) while the rebuild runs: the
    # rebuild waits its turn. Before, in a plain BEGIN, it read first, and a commit made
    # meanwhile failed it at once with "database is locked" (seen in a full test run).
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write turn")
    env = {
        **os.environ,
        "KONTAK_DATABASE_URL": settings.resolved_database_url,
        "KONTAK_DATA_DIR": str(settings.data_dir),
        "NO_COLOR": "1",
    }
    with write_held(sessions, "UPDATE organization SET name = name || ''"):
        rebuild = subprocess.Popen(
            [*KONTAK, "db", "rebuild-search"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # the command is waiting for the write turn by now
    _, stderr = rebuild.communicate(timeout=60)
    assert rebuild.returncode == 0, stderr
    assert "rebuilt" in stderr


@pytest.mark.usefixtures("engine")
def test_user_create_with_password_prints_nothing_on_stdout(settings: Settings) -> None:
    result = run(
        settings,
        "user",
        "create",
        "a@acme.co.id",
        "--org",
        "acme",
        "--role",
        "agent",
        "--password",
        "long-enough-pw",
        "--name",
        "Agent A",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Created agent a@acme.co.id" in result.stderr


@pytest.mark.usefixtures("engine")
def test_cli_errors_say_what_to_do_with_exit_codes(settings: Settings) -> None:
    ok = run(settings, "user", "create", "a@acme.co.id", "--org", "acme", "--role", "agent")
    assert ok.returncode == 0

    again = run(settings, "user", "create", "A@acme.co.id", "--org", "acme", "--role", "agent")
    assert again.returncode == 1
    assert "already exists" in again.stderr

    bad_role = run(settings, "user", "create", "b@acme.co.id", "--org", "acme", "--role", "boss")
    assert bad_role.returncode == 2

    bad_email = run(settings, "user", "create", "nope", "--org", "acme", "--role", "agent")
    assert bad_email.returncode == 2
    assert "not a valid email" in bad_email.stderr

    bad_slug = run(
        settings, "user", "create", "c@acme.co.id", "--org", "Acme Corp", "--role", "agent"
    )
    assert bad_slug.returncode == 2
    assert "slug" in bad_slug.stderr

    short = run(
        settings,
        "user",
        "create",
        "d@acme.co.id",
        "--org",
        "acme",
        "--role",
        "agent",
        "--password",
        "x",
    )
    assert short.returncode == 2
    assert "at least 8" in short.stderr

    unknown = run(settings, "token", "create", "ghost@acme.co.id")
    assert unknown.returncode == 2
    assert "kontak user create" in unknown.stderr
    assert unknown.stdout == ""


def test_db_upgrade_creates_a_new_sqlite_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    result = run(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh" / "kontak.db").exists()
    again = run(settings, "db", "upgrade")
    assert again.returncode == 0


def test_demo_prints_credentials_that_sign_in(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "demo")
    assert run(settings, "db", "upgrade").returncode == 0
    first = run(settings, "demo")
    assert first.returncode == 0, first.stderr
    assert "admin@demo.kontak.id" in first.stderr
    second = run(settings, "demo")
    assert second.returncode == 0, second.stderr
    token = run(settings, "token", "create", "admin@demo.kontak.id")
    assert token.returncode == 0
    assert token.stdout.startswith("kontak_")


@pytest.mark.parametrize(
    "command",
    [
        ("demo",),
        ("token", "create", "admin@demo.kontak.id"),
        ("export", "--org", "demo", "--output", "{out}"),
    ],
)
def test_commands_on_a_database_without_the_schema_say_to_upgrade(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # Before: a driver's traceback ("no such table: user") and exit 1.
    settings = Settings(data_dir=tmp_path / "new")
    (tmp_path / "new").mkdir()
    result = run(settings, *(a.format(out=tmp_path / "out.csv") for a in command))
    assert result.returncode == 2
    assert "run `kontak db upgrade` first" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
