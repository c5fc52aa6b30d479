"""The compiled copy of the parsing child: used only for the source it was built from, and
giving the same answers as plain Python (the parser's own tests, run on the copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kontak import native
from kontak.config import Settings
from kontak.import_job.paths import job_dir
from tests.api.imports import run_import
from tests.conftest import IN_CI
from tests.files import csv_bytes

ROOT = Path(__file__).resolve().parents[2]
# The tests of everything the compiled modules do: reading, checking, normalizing, staging.
PARSER_TESTS = (
    "tests/unit/test_plain_rows.py",
    "tests/unit/test_fast_paths.py",
    "tests/unit/test_normalize.py",
    "tests/unit/test_readers.py",
    "tests/unit/test_staging.py",
    "tests/unit/test_stage_parallel.py",
    "tests/unit/test_ids.py",
)


def _built() -> Path:
    """The compiled copy of this source; `make test` builds it first."""
    folder = native.compiled_copy()
    if folder is None:
        message = "no compiled parser for this source: run `python -m kontak.native`"
        if IN_CI:
            pytest.fail(message + " (CI=true: make test builds it)")
        pytest.skip(message)
    return folder


def _on_copy(folder: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}


def test_a_copy_serves_only_the_source_it_was_built_from(tmp_path: Path) -> None:
    package = tmp_path / "src" / "kontak"
    shutil.copytree(native.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    under = tmp_path / "native"
    assert native.compiled_copy(package, under=under) is None

    built = under / native.source_hash(package) / "kontak"
    built.mkdir(parents=True)
    assert native.compiled_copy(package, under=under) == built.parent

    checks = package / "import_job" / "checks.py"
    checks.write_text(checks.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert native.compiled_copy(package, under=under) is None, "an edited module ran compiled"
    (package / "messages" / "en.json").touch()  # same bytes: still the same source
    checks.write_text(checks.read_text(encoding="utf-8").removesuffix("\n# edited\n"))
    assert native.compiled_copy(package, under=under) == built.parent


def test_the_copy_is_compiled_and_passes_the_parsers_own_tests() -> None:
    folder = _built()
    probe = subprocess.run(
        [sys.executable, "-c", "from kontak.native import is_compiled; print(is_compiled())"],
        env=_on_copy(folder),
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARSER_TESTS],
        cwd=ROOT,
        env=_on_copy(folder),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    assert "failed" not in run.stdout


def _parser_of(settings: Settings, job_id: str) -> str:
    log = (job_dir(settings, job_id) / "stage.log").read_text(encoding="utf-8")
    return log.splitlines()[0]


def test_an_import_runs_the_compiled_parser_when_built(api: TestClient, settings: Settings) -> None:
    _built()
    job = run_import(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    assert job["status"] == "completed"
    assert _parser_of(settings, job["id"]) == "parser: compiled"


def test_an_import_runs_plain_python_when_told_to(
    api: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "compiled_parser", False)
    job = run_import(api, csv_bytes([["name", "phone"], ["Budi", "0812-3456-7890"]]))
    assert job["status"] == "completed"
    assert _parser_of(settings, job["id"]) == "parser: plain Python"


def test_the_newest_copies_of_other_sources_are_kept_to_compare_versions(tmp_path: Path) -> None:
    for age, name in enumerate(["d", "c", "b", "a"]):  # "a" oldest
        folder = tmp_path / name
        (folder / "kontak").mkdir(parents=True)
        stamp = 1_700_000_000 - age * 60
        os.utime(folder, (stamp, stamp))
    (tmp_path / "e.building-123").mkdir()
    native.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "d", "e.building-123"]
