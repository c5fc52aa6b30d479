"""``kontak serve``'s app: start-up's objects frozen out of the garbage collector's walks."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from fastapi import FastAPI

from kontak.cli.main import served_app


def test_the_served_app_is_built_from_the_environment_with_start_up_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KONTAK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KONTAK_DATABASE_URL", raising=False)
    gc.unfreeze()
    try:
        app = served_app()
        assert isinstance(app, FastAPI)
        assert app.state.settings.data_dir == tmp_path
        # Everything alive at that point, the app's routes included, is in the permanent
        # generation: full collections no longer walk it.
        assert gc.get_freeze_count() > 1000
        assert "/api/v1/contacts" in app.openapi()["paths"]
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
        app.state.engine.dispose()
