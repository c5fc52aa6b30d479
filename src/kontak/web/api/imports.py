"""Imports API: template, upload (202 + job), jobs, duplicates, errors, report."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from kontak.custom_field import service as custom_field_service
from kontak.files.template import write_template
from kontak.import_job import service
from kontak.import_job.schemas import DuplicatesRead, ImportJobPage, ImportJobRead, RowErrorRead
from kontak.web.deps import (
    ContactReader,
    Importer,
    LocaleDep,
    PrincipalDep,
    long_trip,
    one_trip,
    transaction,
)

router = APIRouter(prefix="/imports", tags=["imports"])

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
Format = Annotated[str, Query(pattern="^(csv|xlsx)$")]


def file_response(path: Path, fmt: str, download_name: str) -> FileResponse:
    """Send a generated file and delete it afterwards."""
    return FileResponse(
        path,
        media_type=MEDIA[fmt],
        filename=download_name,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get("/template")
@long_trip
def template(request: Request, org: ContactReader, format: Format = "csv") -> FileResponse:
    with transaction(request, org) as (session, org):
        fields = custom_field_service.specs(session, org.id)
    with tempfile.NamedTemporaryFile(suffix=f".{format}", delete=False) as tmp:
        path = Path(tmp.name)
    write_template(path, format, fields)
    return file_response(path, format, f"kontak-template.{format}")


@router.post("", status_code=202, response_model=ImportJobRead)
@one_trip
def create_import(
    request: Request,
    response: Response,
    background: BackgroundTasks,
    org: Importer,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The .csv or .xlsx file")],
    on_existing: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool | None, Form()] = None,
    on_existing_query: Annotated[str | None, Query(alias="on_existing")] = None,
    dry_run_query: Annotated[bool | None, Query(alias="dry_run")] = None,
) -> ImportJobRead:
    with transaction(request, org) as (session, org):
        job = service.start(
            session,
            request.app.state.settings,
            org,
            user_id=principal.user.id,
            filename=file.filename or "upload",
            upload=file.file,
            on_existing=on_existing or on_existing_query or "reject",
            dry_run=bool(dry_run if dry_run is not None else dry_run_query),
        )
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        background.add_task(worker.wake)
    return job


@router.get("", response_model=ImportJobPage)
@one_trip
def list_imports(
    request: Request,
    org: Importer,
    locale: LocaleDep,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIST)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> ImportJobPage:
    with transaction(request, org) as (session, org):
        return service.list_jobs(
            session,
            org,
            limit=limit,
            cursor=cursor,
            locale=locale,
            data_dir=request.app.state.settings.data_dir,
        )


@router.get("/{job_id}", response_model=ImportJobRead)
@one_trip
def get_import(request: Request, job_id: str, org: Importer, locale: LocaleDep) -> ImportJobRead:
    with transaction(request, org) as (session, org):
        data_dir = request.app.state.settings.data_dir
        return service.get(session, org, job_id, locale=locale, data_dir=data_dir)


# Optional: without it every group, row and error (the spec's answer); the import page
# asks for the first few (a 1M-row file can hold ~10,000 of each; the report has them all).
Limit = Annotated[
    int | None,
    Query(
        ge=1,
        le=10_000,
        description="at most this many groups, rows a group, matches or errors; "
        "without it, all of them (the report lists them all too)",
    ),
]


@router.get("/{job_id}/duplicates", response_model=DuplicatesRead)
@one_trip
def get_duplicates(
    job_id: str, request: Request, org: Importer, limit: Limit = None
) -> DuplicatesRead | Response:
    with transaction(request, org) as (session, org):
        settings = request.app.state.settings
        if limit is None:  # whole, streamed from the staging file: memory stays flat
            return _streamed(service.duplicates_json(session, settings, org, job_id))
        return service.duplicates(session, settings, org, job_id, limit=limit)


@router.get("/{job_id}/errors", response_model=list[RowErrorRead])
@one_trip
def get_errors(
    job_id: str, request: Request, org: Importer, locale: LocaleDep, limit: Limit = None
) -> list[RowErrorRead] | Response:
    with transaction(request, org) as (session, org):
        settings = request.app.state.settings
        if limit is None:
            return _streamed(service.errors_json(session, settings, org, job_id, locale=locale))
        return service.errors(session, settings, org, job_id, locale=locale, limit=limit)


def _streamed(pieces: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(pieces, media_type="application/json")


@router.get("/{job_id}/report")
@long_trip
def get_report(
    job_id: str, request: Request, org: Importer, format: Format = "csv"
) -> FileResponse:
    with transaction(request, org) as (session, org):
        path = service.report(session, request.app.state.settings, org, job_id, format)
    return file_response(path, format, f"kontak-import-{job_id}-report.{format}")
