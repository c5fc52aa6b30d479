"""Where a job's files live: ``<data dir>/imports/<job id>/``."""

from __future__ import annotations

from pathlib import Path

from kontak.config import Settings


def job_dir(settings: Settings, job_id: str) -> Path:
    folder = settings.data_dir / "imports" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def source_path(settings: Settings, job_id: str) -> Path:
    return job_dir(settings, job_id) / "source"


def stage_path(settings: Settings, job_id: str) -> Path:
    return job_dir(settings, job_id) / "stage.db"
