"""SQLite's memory statistics are off in every Kontak process, set before SQLite starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from fastapi.testclient import TestClient

from kontak.config import Settings
from kontak.import_job.paths import job_dir
from tests.api.imports import run_import
from tests.files import csv_bytes


def _python(code: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.split()


def test_importing_kontak_turns_sqlites_memory_statistics_off_before_sqlite_starts() -> None:
    off, again, rows = _python(
        """
        import ctypes
        import kontak
        from kontak import sqlite_config
        import sqlite3

        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(1000)])
        # SQLite has started: a second sqlite3_config() is refused (SQLITE_MISUSE = 21),
        # which shows the call went to the library the sqlite3 module uses.
        again = ctypes.CDLL("libsqlite3.so.0").sqlite3_config(9, ctypes.c_int(1))
        print(sqlite_config.memory_statistics_off, again, db.execute("SELECT count(*) FROM t").fetchone()[0])
        """
    )
    assert (off, again, rows) == ("True", "21", "1000")


def test_a_program_that_started_sqlite_first_keeps_its_default_and_works() -> None:
    off, rows = _python(
        """
        import sqlite3
        sqlite3.connect(":memory:").execute("SELECT 1")
        import kontak
        from kontak import sqlite_config

        db = sqlite3.connect(":memory:")
        print(sqlite_config.memory_statistics_off, db.execute("SELECT 41 + 1").fetchone()[0])
        """
    )
    assert (off, rows) == ("False", "42")


def test_an_imports_parsing_child_runs_without_memory_statistics(
    api: TestClient, settings: Settings
) -> None:
    job = run_import(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    assert job["status"] == "completed"
    log = (job_dir(settings, job["id"]) / "stage.log").read_text(encoding="utf-8")
    assert "SQLite memory statistics: off" in log.splitlines()
