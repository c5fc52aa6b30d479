"""`kontak serve`'s processes and their PostgreSQL connections, as the settings choose them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kontak.config import PROCESS_CONNECTIONS, SERVER_CONNECTIONS, Settings


def test_a_server_process_per_core_up_to_four_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KONTAK_WEB_PROCESSES", raising=False)
    assert Settings(data_dir=tmp_path).web_processes == min(os.cpu_count() or 1, 4)
    monkeypatch.setenv("KONTAK_WEB_PROCESSES", "3")
    assert Settings(data_dir=tmp_path).web_processes == 3


@pytest.mark.parametrize(("processes", "each"), [(1, 40), (2, 40), (3, 26), (4, 20), (8, 10)])
def test_the_processes_share_the_postgresql_connections(
    tmp_path: Path, processes: int, each: int
) -> None:
    # PostgreSQL's default max_connections is 100: four processes of 40 would exhaust it.
    settings = Settings(data_dir=tmp_path, web_processes=processes)
    assert settings.postgres_pool == each
    assert each == PROCESS_CONNECTIONS or processes * each <= SERVER_CONNECTIONS


def test_a_configured_pool_size_stands_whatever_the_processes(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, web_processes=4, postgres_pool_size=30).postgres_pool == 30
