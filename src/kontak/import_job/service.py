"""Starting imports, reading jobs, and their duplicates, errors and reports."""

from __future__ import annotations

import heapq
import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from kontak.config import Settings
from kontak.db.base import utcnow
from kontak.db.models import ImportJob, Organization
from kontak.errors import FieldError, InvalidInput, NotFound, PayloadTooLarge
from kontak.files.report import write_report
from kontak.files.xlsx_sheet import MAX_ROW, SheetFull
from kontak.import_job import repository
from kontak.import_job.apply import ON_EXISTING
from kontak.import_job.paths import (
    job_dir,
    progress_path,
    read_progress,
    source_path,
    stage_path,
)
from kontak.import_job.schemas import (
    DuplicatesRead,
    ExistingDuplicate,
    ImportJobPage,
    ImportJobRead,
    InFileDuplicate,
    RowErrorRead,
)
from kontak.import_job.staging import DuplicateGroup, Stage
from kontak.messages import restore, translate

MAX_LIST = 100
# A streamed JSON answer goes out in pieces of about this many characters.
PIECE_CHARS = 1 << 16
# Duplicate groups whose rows' cells are read at once.
GROUPS_A_READ = 500
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_CHUNK = 1 << 20
REPORT_BATCH = 5000  # problem rows whose cells are read at once


def start(
    session: Session,
    settings: Settings,
    org: Organization,
    *,
    user_id: str | None,
    filename: str,
    upload: BinaryIO,
    on_existing: str = "reject",
    dry_run: bool = False,
    worker: str | None = None,
) -> ImportJobRead:
    """Save the upload and queue its job; the worker does the rest.

    With ``worker`` the job is created already claimed by it (the CLI runs its own job, and
    a server's worker sharing the database must not take it first)."""
    if on_existing not in ON_EXISTING:
        raise InvalidInput(
            f"on_existing must be one of {', '.join(ON_EXISTING)}.",
            [FieldError("on_existing", f"'{on_existing}' is not one of {', '.join(ON_EXISTING)}")],
        )
    name = Path(filename or "upload").name[:255] or "upload"
    job = ImportJob(
        organization_id=org.id,
        user_id=user_id,
        filename=name,
        on_existing=on_existing,
        dry_run=dry_run,
        format=_format_from_name(name),
    )
    if worker is not None:
        job.status, job.worker = "processing", worker
        job.started_at = job.heartbeat_at = utcnow()
    repository.add(session, job)
    try:
        _save(upload, source_path(settings, job.id), settings.max_upload_bytes)
    except BaseException:
        shutil.rmtree(job_dir(settings, job.id), ignore_errors=True)
        raise
    return read(job)


def read(job: ImportJob, locale: str = "en", data_dir: Path | None = None) -> ImportJobRead:
    """The job as the API shows it, its message in ``locale``. While a streamed write keeps
    SQLite's writers waiting, the rows checked so far are in the job's folder under
    ``data_dir`` (``paths.progress_path``), not on its row yet."""
    data = ImportJobRead.model_validate(job)
    if job.status == "processing" and data_dir is not None:
        live = read_progress(progress_path(data_dir, job.id))
        if live is not None and live[0] > data.rows_processed:
            data.rows_processed, data.rows_total = live
    if job.message:
        data.message = translate(restore(job.message, job.message_data), locale)
    return data


def _format_from_name(name: str) -> str | None:
    suffix = Path(name).suffix.lower().lstrip(".")
    return suffix if suffix in ("csv", "xlsx") else None


def _save(upload: BinaryIO, target: Path, limit: int) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := upload.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"The file is larger than {limit // (1024 * 1024)} MB. Split it into smaller "
                    "files and upload them one by one."
                )
            out.write(chunk)


def get(
    session: Session,
    org: Organization,
    job_id: str,
    *,
    locale: str = "en",
    data_dir: Path | None = None,
) -> ImportJobRead:
    return read(_job(session, org, job_id), locale, data_dir)


def list_jobs(
    session: Session,
    org: Organization,
    *,
    limit: int = 50,
    cursor: str | None = None,
    locale: str = "en",
    data_dir: Path | None = None,
) -> ImportJobPage:
    """The organization's imports, newest first."""
    limit = max(1, min(limit, MAX_LIST))
    jobs = repository.list_recent(session, org.id, limit=limit + 1, before_id=cursor)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return ImportJobPage(
        items=[read(j, locale, data_dir) for j in jobs],
        next_cursor=jobs[-1].id if more and jobs else None,
    )


def _job(session: Session, org: Organization, job_id: str) -> ImportJob:
    job = repository.get(session, org.id, job_id)
    if job is None:
        raise NotFound(f"No import with id {job_id} in your organization.")
    return job


def _stage(settings: Settings, job: ImportJob) -> Stage | None:
    path = stage_path(settings, job.id)
    if job.status in ("queued", "processing") or not path.exists():
        return None
    return Stage(path)


def duplicates(
    session: Session,
    settings: Settings,
    org: Organization,
    job_id: str,
    *,
    limit: int | None = None,
) -> DuplicatesRead:
    """Rows of the file that share a value, and rows that match existing contacts. With
    ``limit``: at most that many groups, rows a group and matches (the pages show the
    first few; a 1M-row file's ~10,000 groups made a 12 MB page that took 19 s)."""
    stage = _stage(settings, _job(session, org, job_id))
    if stage is None:
        return DuplicatesRead(in_file=[], existing=[])
    try:
        groups = stage.duplicate_groups()
        if limit is not None:
            groups = [DuplicateGroup(g.kind, g.value, g.rows[:limit]) for g in groups[:limit]]
        return DuplicatesRead(
            in_file=[InFileDuplicate.model_validate(g) for g in _in_file(stage, groups)],
            existing=[ExistingDuplicate.model_validate(e) for e in _existing(stage, limit)],
        )
    finally:
        stage.close()


def _in_file(stage: Stage, groups: list[DuplicateGroup]) -> Iterator[dict[str, Any]]:
    """Each group as the API shows it, its rows' cells read GROUPS_A_READ groups at a time."""
    headers = stage.meta("headers", [])
    for start in range(0, len(groups), GROUPS_A_READ):
        batch = groups[start : start + GROUPS_A_READ]
        cells = stage.cells(sorted({r for g in batch for r in g.rows}))
        for g in batch:
            rows = [{"row": r, "cells": _by_header(headers, cells.get(r, []))} for r in g.rows]
            yield {"key": g.kind, "value": g.value, "rows": rows}


def _existing(stage: Stage, limit: int | None = None) -> Iterator[dict[str, Any]]:
    for row, kind, value, contact_id in stage.existing(limit):
        yield {"row": row, "key": kind, "value": value, "contact_id": contact_id}


def _errors(stage: Stage, locale: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    for row, column, value, message in stage.errors(limit):
        yield {"row": row, "column": column, "value": value, "message": translate(message, locale)}


@dataclass(frozen=True, slots=True)
class ProblemCounts:
    """How many of each problem a finished import's staging file holds."""

    in_file: int  # values rows of the file share
    existing: int  # (row, key) matches of stored contacts
    errors: int  # invalid cells
    group_rows: list[int]  # the rows sharing each value, in the groups' order


def problem_counts(
    session: Session, settings: Settings, org: Organization, job_id: str
) -> ProblemCounts:
    stage = _stage(settings, _job(session, org, job_id))
    if stage is None:
        return ProblemCounts(0, 0, 0, [])
    try:
        groups = stage.duplicate_groups()
        return ProblemCounts(
            len(groups), stage.count_existing(), stage.count_errors(), [len(g.rows) for g in groups]
        )
    finally:
        stage.close()


def duplicates_json(
    session: Session, settings: Settings, org: Organization, job_id: str
) -> Iterator[str]:
    """What :func:`duplicates` answers without a limit, as JSON text in pieces, each read
    from the staging file as it is sent. Re-importing a 1M-row file holds ~2M matches of
    stored contacts (an email and a phone a row); as models they took ~1 KB each in the
    server (200,000: a process from ~110 to ~310 MB). The job is looked up now (an unknown
    one raises NotFound before anything is sent)."""
    return _pieces(_duplicates_parts(_stage(settings, _job(session, org, job_id))))


def errors_json(
    session: Session, settings: Settings, org: Organization, job_id: str, *, locale: str = "en"
) -> Iterator[str]:
    """What :func:`errors` answers without a limit, as JSON text in pieces (see
    :func:`duplicates_json`)."""
    return _pieces(_errors_parts(_stage(settings, _job(session, org, job_id)), locale))


def _duplicates_parts(stage: Stage | None) -> Iterator[str]:
    if stage is None:
        yield '{"in_file":[],"existing":[]}'
        return
    try:
        yield '{"in_file":'
        yield from _array(_in_file(stage, stage.duplicate_groups()))
        yield ',"existing":'
        yield from _array(_existing(stage))
        yield "}"
    finally:
        stage.close()


def _errors_parts(stage: Stage | None, locale: str) -> Iterator[str]:
    if stage is None:
        yield "[]"
        return
    try:
        yield from _array(_errors(stage, locale))
    finally:
        stage.close()


def _array(items: Iterator[dict[str, Any]]) -> Iterator[str]:
    """A JSON array of ``items``, an item at a time."""
    yield "["
    comma = ""
    for item in items:
        yield comma + _json(item)
        comma = ","
    yield "]"


def _pieces(parts: Iterator[str]) -> Iterator[str]:
    """``parts`` joined into pieces of about PIECE_CHARS characters."""
    buffer: list[str] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= PIECE_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def _by_header(headers: list[str], cells: list[str]) -> dict[str, str]:
    named: dict[str, str] = {}
    for i, header in enumerate(headers):
        key = header or f"column {i + 1}"
        named[key] = cells[i] if i < len(cells) else ""
    return named


def errors(
    session: Session,
    settings: Settings,
    org: Organization,
    job_id: str,
    *,
    locale: str = "en",
    limit: int | None = None,
) -> list[RowErrorRead]:
    """Every invalid cell (with ``limit``: the first that many, in row order): row, the
    file's column header, the value, and what to do."""
    stage = _stage(settings, _job(session, org, job_id))
    if stage is None:
        return []
    try:
        return [RowErrorRead.model_validate(e) for e in _errors(stage, locale, limit)]
    finally:
        stage.close()


def report(session: Session, settings: Settings, org: Organization, job_id: str, fmt: str) -> Path:
    """A CSV or XLSX of the problem rows, each led by what is wrong; the caller deletes it."""
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("format must be csv or xlsx.", [FieldError("format", "csv or xlsx")])
    job = _job(session, org, job_id)
    stage = _stage(settings, job)
    if stage is None:
        raise NotFound("This import has no report yet: wait until it has finished.")
    try:
        problems = _problems(stage, job.on_existing)
        headers = stage.meta("headers", [])
        with tempfile.NamedTemporaryFile(
            suffix=f".{fmt}", dir=job_dir(settings, job.id), delete=False
        ) as tmp:
            path = Path(tmp.name)
        try:
            write_report(path, fmt, headers, _problem_rows(stage, problems))
        except SheetFull:
            path.unlink(missing_ok=True)
            raise InvalidInput(
                f"An XLSX sheet holds at most {MAX_ROW:,} rows under its header row, and "
                "this report has more. Download the report as CSV.",
                [FieldError("format", "use csv for this report")],
            ) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
    finally:
        stage.close()


def _problems(stage: Stage, on_existing: str) -> Iterator[tuple[int, list[str]]]:
    """(row, what is wrong with it) of every problem row, in row order, read as they are
    taken: the row errors, the duplicate groups and the matches of stored contacts, each
    already in row order, merged. A re-uploaded 1M-row file has a million such rows;
    gathered in a dict first they took ~1 GB."""
    errors = (
        (row, (f"{column} '{value}': " if column else "") + message)
        for row, column, value, message in stage.errors()
    )
    in_groups = sorted(
        (
            (
                row,
                f"{group.kind} {group.value} is also in row(s) "
                + ", ".join(str(r) for r in group.rows if r != row),
            )
            for group in stage.duplicate_groups()
            for row in group.rows
        ),
        key=lambda pair: pair[0],  # stable: a row's groups stay in the groups' order
    )
    kinds: list[Iterator[tuple[int, str]]] = [errors, iter(in_groups)]
    if on_existing == "reject":
        kinds.append(
            (row, f"{kind} {value} belongs to existing contact {contact_id}")
            for row, kind, value, contact_id in stage.existing()
        )
    # heapq.merge yields equal rows in the order of its inputs: errors, groups, matches.
    merged = heapq.merge(*kinds, key=lambda pair: pair[0])
    for row, notes in itertools.groupby(merged, key=lambda pair: pair[0]):
        yield row, [note for _row, note in notes]


def _problem_rows(
    stage: Stage, problems: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[str, list[str]]]:
    while batch := list(itertools.islice(problems, REPORT_BATCH)):
        cells = stage.cells([row for row, _notes in batch])
        for row, notes in batch:
            yield f"row {row}: " + "; ".join(notes), cells.get(row, [])
