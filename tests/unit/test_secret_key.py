"""The session cookies' key kept in the data folder: one key, whichever server process
makes it first (``kontak serve --processes N`` starts its processes at once)."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from kontak.config import Settings
from kontak.web.session import secret_key


def _key_at_once(folder: Path, start: Any, keys: Any) -> None:
    start.wait()
    keys.put(secret_key(Settings(data_dir=folder)))


def test_processes_started_at_once_on_a_new_folder_all_sign_with_one_key(
    tmp_path: Path,
) -> None:
    # Each process used to write a key of its own when it found none, and read back
    # whichever was there: processes of one server signed cookies with different keys,
    # and a signed-in user was signed out by every request the other process served.
    context = multiprocessing.get_context("fork")
    for round_ in range(10):
        folder = tmp_path / f"data{round_}"  # not made yet, as on a first start
        start, keys = context.Barrier(8), context.Queue()
        processes = [
            context.Process(target=_key_at_once, args=(folder, start, keys)) for _ in range(8)
        ]
        for process in processes:
            process.start()
        got = {keys.get(timeout=30) for _ in processes}
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
        kept = (folder / "secret_key").read_text(encoding="utf-8").strip()
        assert got == {kept}, f"round {round_}: {len(got)} keys"
        assert len(kept) >= 64
        assert stat.S_IMODE((folder / "secret_key").stat().st_mode) == 0o600
        assert sorted(p.name for p in folder.iterdir()) == ["secret_key"]  # no leftovers


def test_the_key_is_kept_across_starts_and_a_configured_one_wins(tmp_path: Path) -> None:
    first = secret_key(Settings(data_dir=tmp_path))
    assert secret_key(Settings(data_dir=tmp_path)) == first
    assert secret_key(Settings(data_dir=tmp_path, secret_key="set-by-hand")) == "set-by-hand"


def test_an_empty_key_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    # An empty key would sign every cookie with "" (anyone could forge a session).
    (tmp_path / "secret_key").write_text("\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="delete it"):
        secret_key(Settings(data_dir=tmp_path))
