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


PROGRESS_FILE = "progress"


def progress_path(data_dir: Path, job_id: str) -> Path:
    """Rows checked so far while a streamed write keeps SQLite's writers waiting
    (``import_job.stream``): ``<rows> <estimated total>``; read by the job's readers.
    Takes the data folder only: readers know no more, and make no folder."""
    return data_dir / "imports" / job_id / PROGRESS_FILE


def write_progress(path: Path, done: int, total: int) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{done} {total}", encoding="ascii")
    partial.replace(path)


def read_progress(path: Path) -> tuple[int, int] | None:
    """What :func:`write_progress` last wrote, or None."""
    try:
        done, total = path.read_text(encoding="ascii").split()
        return int(done), int(total)
    except (OSError, ValueError):
        return None
