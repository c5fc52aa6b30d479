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
from kontak.db import search_index
from kontak.db.base import utcnow
from kontak.db.session import session_scope
from kontak.files.table import Limits
from kontak.import_job import repository
from kontak.import_job.apply import Outcome, apply, elapsed, keep
from kontak.import_job.bulk import is_database_error, refresh_statistics
from kontak.import_job.paths import (
    job_dir,
    progress_path,
    source_path,
    stage_path,
    write_progress,
)
from kontak.import_job.stage import SEGMENT_PREFIX
from kontak.import_job.staging import Stage
from kontak.import_job.stream import MAX_SEGMENTS, StreamedWrite, streams, worker_niceness
from kontak.messages import Join, Text, stored
from kontak.native import compiled_copy

log = logging.getLogger("kontak.import")
ANALYZE_FROM = 10_000  # contacts created by one import that make the planner's figures stale
Progress = Callable[[int, int], None]
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class StageRejected(Exception):
    def __init__(self, message: Text) -> None:
        super().__init__(message)
        self.message = message


def run_job(
    settings: Settings,
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    on_progress: Progress | None = None,
    claimed: bool = False,
    defer_upkeep: bool = False,
) -> Callable[[], None] | None:
    """Claim ``job_id`` if it is queued (or take it as ``claimed`` by this process, see
    ``service.start(worker=...)``) and run it to a final status.

    After a completed import the new contacts are indexed for search and the planner's
    statistics refreshed (1M contacts: SQLite ~8 s, PostgreSQL ~30 s); with
    ``defer_upkeep`` that work is returned instead of done, so that the caller (the CLI)
    can show the outcome first."""
    with session_scope(sessions, write=True) as session:
        if not claimed and not repository.claim(session, job_id, WORKER_ID):
            return None
        job = repository.get_any(session, job_id)
        assert job is not None
        if claimed and (job.status != "processing" or job.worker != WORKER_ID):
            return None
        org = account_repository.get_organization(session, job.organization_id)
        assert org is not None
        fields = custom_field_service.specs(session, org.id)
        on_existing, dry_run = job.on_existing, job.dry_run
        streamed = (
            settings.stream_imports
            and settings.parse_workers > 1
            and streams(session, org, on_existing=on_existing, dry_run=dry_run)
        )
    source = f"import:{job_id}"
    stream = StreamedWrite(sessions, org, source=source) if streamed else None
    try:
        started = time.monotonic()
        try:
            rows = _stage(
                settings, sessions, job_id, org.default_region, fields, on_progress, stream
            )
        except BaseException:
            if stream is not None:  # give SQLite's write turn back before the job is written
                stream.close()
            raise
        log.info("import %s: %d rows read and checked in %.2f s", job_id, rows, elapsed(started))
        stage = Stage(stage_path(settings, job_id))
        try:
            fmt = stage.meta("format")

            def record(session: Session, outcome: Outcome) -> None:
                # In the import's own transaction: a crash can never leave its contacts
                # committed under a job that says otherwise.
                values = _final_values(outcome, dry_run=dry_run, fmt=fmt, rows=rows)
                repository.set_values(session, job_id, **values)

            outcome = stream.finish(rows, stage, record) if stream is not None else None
            if outcome is not None:
                stage.settle()  # its rows are committed: nobody reads them again
                keep(stage, outcome)
            else:
                # A streamed write given up or rolled back needs the rows its segments hold.
                stage.assemble()
                _set(sessions, job_id, rows_total=rows, rows_processed=rows)
                outcome = apply(
                    sessions,
                    org,
                    stage,
                    on_existing=on_existing,
                    dry_run=dry_run,
                    source=source,
                    record=record,
                )
        finally:
            stage.close()
        log.info("import %s: %s in %.2f s in all", job_id, outcome.status, elapsed(started))
        if outcome.status == "completed" and not dry_run:
            # The job said `completed` in the contacts' own commit (``record``); this
            # upkeep only makes later queries fast (1M contacts: ~8 s nobody waits for).
            created = outcome.created
            if defer_upkeep:
                return lambda: _after_import(sessions, created)
            _after_import(sessions, created)
        else:
            _set(sessions, job_id, **_final_values(outcome, dry_run=dry_run, fmt=fmt, rows=rows))
    except StageRejected as exc:
        _set(sessions, job_id, status="rejected", finished_at=utcnow(), **_message(exc.message))
    except Exception as exc:
        log.exception("import %s failed", job_id)
        database = is_database_error(exc)
        _fail(sessions, job_id, Text("summary.database" if database else "summary.unexpected"))
    finally:
        if stream is not None:
            stream.close()
        # Segments, announced or not (a rejected file leaves some half-written).
        for path in job_dir(settings, job_id).glob(f"{SEGMENT_PREFIX}*"):
            path.unlink(missing_ok=True)
        progress_path(settings.data_dir, job_id).unlink(missing_ok=True)
    return None


def _after_import(sessions: sessionmaker[Session], created: int) -> None:
    """Upkeep once the job is completed (its contacts are committed and listed; this only
    makes later queries fast): planner statistics after a big import, and the search index
    of the new rows. A failure here leaves the job as it is; the next import or the
    server's housekeeping thread tries again."""
    engine = sessions.kw["bind"]
    try:
        if created >= ANALYZE_FROM:
            analyzing = time.monotonic()
            refresh_statistics(engine)
            log.info("import: planner statistics refreshed in %.2f s", elapsed(analyzing))
        search_index.catch_up(engine)
    except Exception:
        log.exception("upkeep after an import failed; it is retried later")


def _stage(
    settings: Settings,
    sessions: sessionmaker[Session],
    job_id: str,
    region: str,
    fields: list[FieldSpec],
    on_progress: Progress | None,
    stream: StreamedWrite | None = None,
) -> int:
    """Run the parsing child; returns the number of data rows staged. With ``stream``, the
    child stages the file in segments, each handed to it as soon as it is staged."""
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
        "workers": settings.parse_workers,
        "segments": MAX_SEGMENTS if stream is not None else 0,
        "worker_niceness": (
            worker_niceness(sessions.kw["bind"].dialect.name) if stream is not None else 0
        ),
    }
    spec_file = folder / "spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    compiled = compiled_copy() if settings.compiled_parser else None
    if compiled is not None:  # the same source, compiled: ~1.25x the rows a second (1M rows)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(compiled), env.get("PYTHONPATH")]))
    with (
        (folder / "stage.log").open("wb") as errlog,
        subprocess.Popen(
            [sys.executable, "-m", "kontak.import_job.stage", str(spec_file)],
            stdout=subprocess.PIPE,
            stderr=errlog,
            text=True,
            env=env,
        ) as child,
    ):
        timer = threading.Timer(settings.parse_timeout_s, child.kill)
        timer.start()
        try:
            progress = progress_path(settings.data_dir, job_id)
            verdict = _follow(child, sessions, job_id, on_progress, stream, progress)
            code = child.wait()
        finally:
            timer.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
    if code == 0 and verdict.startswith("DONE "):
        return int(verdict.split()[1])
    if verdict.startswith("REJECT "):
        raise StageRejected(Text.from_json(json.loads(verdict[7:])["text"]))
    raise StageRejected(_crash_message(code, settings, folder))


def _follow(
    child: subprocess.Popen[str],
    sessions: sessionmaker[Session],
    job_id: str,
    on_progress: Progress | None,
    stream: StreamedWrite | None,
    progress_file: Path,
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
            if stream is not None and stream.holds_write_turn:
                # The job's row cannot be written before the commit: its readers take
                # the progress from this file meanwhile (cheap: at every line).
                write_progress(progress_file, int(done), int(total))
            elif now - last_write >= 0.5:
                last_write = now
                _set(
                    sessions,
                    job_id,
                    rows_processed=int(done),
                    rows_total=int(total),
                    heartbeat_at=utcnow(),
                )
        elif line.startswith("SEGMENT ") and stream is not None:
            _, number, rows, invalid, path = line.split(" ", 4)
            stream.add(int(number), int(rows), int(invalid), Path(path))
        elif line.startswith(("DONE ", "REJECT ")):
            verdict = line
    return verdict


def _crash_message(code: int, settings: Settings, folder: Path) -> Text:
    if code < 0 and -code == signal.SIGKILL:
        reason = Text("crash.killed", seconds=f"{settings.parse_timeout_s:.0f}")
    elif code < 0:
        reason = Text("crash.signal", signal=signal.Signals(-code).name)
    else:
        reason = Text("crash.exit", code=code)
    log.warning("parsing child ended with %s; see %s", code, folder / "stage.log")
    return Text("file.crashed", reason=reason)


def _final_values(
    outcome: Outcome, *, dry_run: bool, fmt: str | None, rows: int
) -> dict[str, object]:
    """The job's columns once it has ended with ``outcome``."""
    return {
        "status": outcome.status,
        "rows_total": rows,
        "rows_processed": rows,
        "format": fmt,
        "created": outcome.created,
        "updated": outcome.updated,
        "skipped": outcome.skipped,
        "duplicate_count": outcome.duplicate_rows,
        "error_count": outcome.error_count,
        "finished_at": utcnow(),
        **_message(summary(outcome, dry_run=dry_run)),
    }


def _message(text: Text) -> dict[str, object]:
    """The job columns of a message: English text, and its key and parameters."""
    return {"message": str(text), "message_data": stored(text)}


def summary(outcome: Outcome, *, dry_run: bool) -> Text:
    """The job's one-line message, saying what happened and what to do."""
    if outcome.status == "completed":
        done: list[Text] = [_count(outcome.created, "summary.created")]
        updated, unchanged = outcome.updated, outcome.unchanged
        if updated and unchanged:  # their updated_at stays: say why (docs/DECISIONS.md)
            done.append(Text("summary.updated_unchanged", count=updated, unchanged=unchanged))
        elif updated:
            done.append(Text("summary.updated", count=updated))
        if outcome.skipped:
            done.append(Text("summary.skipped", count=outcome.skipped))
        key = "summary.dry_run" if dry_run else "summary.completed"
        return Text(key, done=Join(tuple(done)))
    parts: list[Text] = []
    if outcome.in_file_groups:
        parts.append(_count(outcome.in_file_groups, "summary.in_file"))
    if outcome.existing_rows and outcome.duplicate_rows:
        parts.append(_count(outcome.existing_rows, "summary.existing"))
    if outcome.error_count:
        parts.append(_count(outcome.error_count, "summary.errors"))
    return Text("summary.rejected", parts=Join(tuple(parts), "; "))


def _count(n: int, key: str) -> Text:
    return Text(f"{key}_one") if n == 1 else Text(key, count=n)


def _set(sessions: sessionmaker[Session], job_id: str, **values: object) -> None:
    with session_scope(sessions, write=True) as session:
        repository.set_values(session, job_id, **values)


def _fail(sessions: sessionmaker[Session], job_id: str, message: Text) -> None:
    try:
        _set(sessions, job_id, status="failed", finished_at=utcnow(), **_message(message))
    except Exception:
        log.exception("could not mark import %s failed; recovery will", job_id)


def recover(
    sessions: sessionmaker[Session], *, stale_after_s: float, data_dir: Path | None = None
) -> int:
    """Mark ``failed`` the jobs whose worker is gone: a dead process on this host, or no
    heartbeat for ``stale_after_s`` (on the job's row, or in its progress file under
    ``data_dir`` while a streamed write keeps the row from being written). Returns how
    many."""
    now = utcnow()
    host = socket.gethostname()
    count = 0
    with session_scope(sessions, write=True) as session:
        for job in repository.processing(session):
            worker_host, _, pid = (job.worker or "").rpartition(":")
            dead_here = worker_host == host and pid.isdigit() and not _alive(int(pid))
            stale = (
                job.heartbeat_at is None
                or job.heartbeat_at < repository.stale_before(now, stale_after_s)
            ) and not _recent_progress(data_dir, job.id, stale_after_s)
            if dead_here or stale:
                job.status = "failed"
                job.finished_at = now
                interrupted = Text("summary.interrupted")
                job.message, job.message_data = str(interrupted), stored(interrupted)
                count += 1
    return count


def _recent_progress(data_dir: Path | None, job_id: str, seconds: float) -> bool:
    if data_dir is None:
        return False
    try:
        written = progress_path(data_dir, job_id).stat().st_mtime
    except OSError:
        return False
    return time.time() - written < seconds


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
