"""Runs one claimed import job: the parsing child, then the all-or-nothing apply step.

Every way an import can end is recorded on the job row: ``completed``, ``rejected`` (the
file is at fault; the message says what to do) or ``failed`` (we are: the process or the
database went away; nothing was written and the job can be run again).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from kontak.account import repository as account_repository
from kontak.config import Settings
from kontak.custom_field import service as custom_field_service
from kontak.custom_field.values import FieldSpec
from kontak.db.base import utcnow
from kontak.db.session import session_scope
from kontak.files.table import Limits
from kontak.import_job import repository
from kontak.import_job.apply import Outcome, apply
from kontak.import_job.bulk import is_database_error
from kontak.import_job.paths import job_dir, source_path, stage_path
from kontak.import_job.staging import Stage

log = logging.getLogger("kontak.import")
Progress = Callable[[int, int], None]
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class StageRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def run_job(
    settings: Settings,
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    on_progress: Progress | None = None,
) -> None:
    """Claim ``job_id`` if it is queued and run it to a final status."""
    with session_scope(sessions, write=True) as session:
        if not repository.claim(session, job_id, WORKER_ID):
            return
        job = repository.get_any(session, job_id)
        assert job is not None
        org = account_repository.get_organization(session, job.organization_id)
        assert org is not None
        fields = custom_field_service.specs(session, org.id)
        on_existing, dry_run = job.on_existing, job.dry_run
    try:
        rows = _stage(settings, sessions, job_id, org.default_region, fields, on_progress)
        _set(sessions, job_id, rows_total=rows, rows_processed=rows)
        stage = Stage(stage_path(settings, job_id))
        try:
            outcome = apply(
                sessions,
                org,
                stage,
                on_existing=on_existing,
                dry_run=dry_run,
                source=f"import:{job_id}",
            )
            fmt = stage.meta("format")
        finally:
            stage.close()
        _finish(sessions, job_id, outcome, dry_run=dry_run, fmt=fmt)
    except StageRejected as exc:
        _set(sessions, job_id, status="rejected", message=exc.message, finished_at=utcnow())
    except Exception as exc:
        log.exception("import %s failed", job_id)
        if is_database_error(exc):
            message = (
                "The database stopped answering during the import; nothing was imported. "
                "Run the import again."
            )
        else:
            message = (
                "The import stopped on an unexpected error; nothing was imported. Run it "
                "again, and report it if it happens again."
            )
        _fail(sessions, job_id, message)


def _stage(
    settings: Settings,
    sessions: sessionmaker[Session],
    job_id: str,
    region: str,
    fields: list[FieldSpec],
    on_progress: Progress | None,
) -> int:
    """Run the parsing child; returns the number of data rows staged."""
    folder = job_dir(settings, job_id)
    spec = {
        "source": str(source_path(settings, job_id)),
        "stage": str(stage_path(settings, job_id)),
        "region": region,
        "fields": [asdict(f) for f in fields],
        "limits": asdict(
            Limits(
                max_rows=settings.max_rows,
                max_columns=settings.max_columns,
                max_cell_chars=settings.max_cell_chars,
                max_xlsx_uncompressed_bytes=settings.max_xlsx_uncompressed_bytes,
            )
        ),
        "memory_limit_mb": settings.parse_memory_limit_mb,
    }
    spec_file = folder / "spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with (
        (folder / "stage.log").open("wb") as errlog,
        subprocess.Popen(
            [sys.executable, "-m", "kontak.import_job.stage", str(spec_file)],
            stdout=subprocess.PIPE,
            stderr=errlog,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as child,
    ):
        timer = threading.Timer(settings.parse_timeout_s, child.kill)
        timer.start()
        try:
            verdict = _follow(child, sessions, job_id, on_progress)
            code = child.wait()
        finally:
            timer.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
    if code == 0 and verdict.startswith("DONE "):
        return int(verdict.split()[1])
    if verdict.startswith("REJECT "):
        raise StageRejected(json.loads(verdict[7:])["message"])
    raise StageRejected(_crash_message(code, settings, folder))


def _follow(
    child: subprocess.Popen[str],
    sessions: sessionmaker[Session],
    job_id: str,
    on_progress: Progress | None,
) -> str:
    assert child.stdout is not None
    verdict = ""
    last_write = 0.0
    for line in child.stdout:
        line = line.strip()
        if line.startswith("PROGRESS "):
            _, done, total = line.split()
            if on_progress:
                on_progress(int(done), int(total))
            now = time.monotonic()
            if now - last_write >= 0.5:
                last_write = now
                _set(
                    sessions,
                    job_id,
                    rows_processed=int(done),
                    rows_total=int(total),
                    heartbeat_at=utcnow(),
                )
        elif line.startswith(("DONE ", "REJECT ")):
            verdict = line
    return verdict


def _crash_message(code: int, settings: Settings, folder: Path) -> str:
    if code < 0 and -code == signal.SIGKILL:
        reason = (
            f"reading it took longer than {settings.parse_timeout_s:.0f} s "
            "or needed too much memory"
        )
    elif code < 0:
        reason = f"the reader stopped on it ({signal.Signals(-code).name})"
    else:
        reason = f"the reader stopped on it (exit {code})"
    log.warning("parsing child ended with %s; see %s", code, folder / "stage.log")
    return (
        f"The file could not be read: {reason}. It may be damaged or built to harm; open it "
        "in your spreadsheet program, save it again as .xlsx or CSV (or split it), and "
        "upload it again."
    )


def _finish(
    sessions: sessionmaker[Session],
    job_id: str,
    outcome: Outcome,
    *,
    dry_run: bool,
    fmt: str | None,
) -> None:
    _set(
        sessions,
        job_id,
        status=outcome.status,
        format=fmt,
        created=outcome.created,
        updated=outcome.updated,
        skipped=outcome.skipped,
        duplicate_count=outcome.duplicate_rows,
        error_count=outcome.error_count,
        message=summary(outcome, dry_run=dry_run),
        finished_at=utcnow(),
    )


def summary(outcome: Outcome, *, dry_run: bool) -> str:
    """The job's one-line message, saying what happened and what to do."""
    if outcome.status == "completed":
        done = _count(outcome.created, "contact", "contacts") + " created"
        if outcome.updated:
            done += f", {outcome.updated} updated"
        if outcome.skipped:
            done += f", {outcome.skipped} skipped (already in your contacts)"
        return (
            f"Dry run: {done} if imported; nothing was written."
            if dry_run
            else f"Imported: {done}."
        )
    parts = []
    if outcome.in_file_groups:
        parts.append(
            _count(outcome.in_file_groups, "value is", "values are") + " repeated in the file"
        )
    if outcome.existing_rows and outcome.duplicate_rows:
        parts.append(
            _count(outcome.existing_rows, "row matches", "rows match") + " existing contacts"
        )
    if outcome.error_count:
        parts.append(_count(outcome.error_count, "cell has", "cells have") + " errors")
    return (
        "Nothing was imported: "
        + "; ".join(parts)
        + ". See the duplicated data and the errors, fix the file, and upload it again."
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _set(sessions: sessionmaker[Session], job_id: str, **values: object) -> None:
    with session_scope(sessions, write=True) as session:
        repository.set_values(session, job_id, **values)


def _fail(sessions: sessionmaker[Session], job_id: str, message: str) -> None:
    try:
        _set(sessions, job_id, status="failed", message=message, finished_at=utcnow())
    except Exception:
        log.exception("could not mark import %s failed; recovery will", job_id)


def recover(sessions: sessionmaker[Session], *, stale_after_s: float) -> int:
    """Mark ``failed`` the jobs whose worker is gone: a dead process on this host, or no
    heartbeat for ``stale_after_s``. Returns how many."""
    now = utcnow()
    host = socket.gethostname()
    count = 0
    with session_scope(sessions, write=True) as session:
        for job in repository.processing(session):
            worker_host, _, pid = (job.worker or "").rpartition(":")
            dead_here = worker_host == host and pid.isdigit() and not _alive(int(pid))
            stale = job.heartbeat_at is None or job.heartbeat_at < repository.stale_before(
                now, stale_after_s
            )
            if dead_here or stale:
                job.status = "failed"
                job.finished_at = now
                job.message = (
                    "The import was interrupted (the server stopped while it ran); nothing "
                    "was imported. Run it again."
                )
                count += 1
    return count


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
