"""What every ``kontak`` command loads before it runs: not the migration tool, nor the
PostgreSQL driver on SQLite (~75 and ~60 ms of each command's start; they are imported
where they are used)."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_starts_without_alembic_or_psycopg() -> None:
    probe = (
        "import sys\n"
        "from kontak.cli.main import app\n"
        "print(sorted(m for m in ('alembic', 'psycopg') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stderr
