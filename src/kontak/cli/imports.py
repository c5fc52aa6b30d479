"""``kontak import``, ``kontak export`` and ``kontak template``: files in and out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kontak.account import service as account_service
from kontak.cli.context import EXIT_REJECTED, EXIT_USAGE, err, out, transaction
from kontak.config import get_settings
from kontak.contact.export import Columns, export_pages, write_xlsx
from kontak.contact.repository import ContactFilter
from kontak.custom_field import service as custom_field_service
from kontak.db.session import Checkpointer, dispose, make_engine, make_sessionmaker
from kontak.files.template import write_template
from kontak.files.writers import csv_page_chunks
from kontak.import_job import service
from kontak.import_job.apply import ON_EXISTING
from kontak.import_job.runner import WORKER_ID, run_job
from kontak.import_job.schemas import DuplicatesRead, RowErrorRead
from kontak.import_job.service import ProblemCounts


def import_file(
    file: Path = typer.Argument(..., help="The .csv or .xlsx file to import."),
    org: str = typer.Option(..., "--org", help="Organization slug."),
    on_existing: str = typer.Option("reject", "--on-existing", help="reject, skip or update."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only; write nothing."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the job, duplicates and errors as JSON."
    ),
) -> None:
    """Import contacts; exit 0 imported, 1 rejected, 2 bad usage or unreadable file."""
    if on_existing not in ON_EXISTING:
        err.print(f"[red]Error:[/red] --on-existing must be one of {', '.join(ON_EXISTING)}.")
        raise typer.Exit(EXIT_USAGE)
    if not file.is_file():
        err.print(f"[red]Error:[/red] {file} is not a readable file.")
        raise typer.Exit(EXIT_USAGE)
    settings = get_settings()
    with transaction(settings) as session, file.open("rb") as upload:
        organization = account_service.get_organization(session, org)
        job = service.start(
            session,
            settings,
            organization,
            user_id=None,
            filename=file.name,
            upload=upload,
            on_existing=on_existing,
            dry_run=dry_run,
            worker=WORKER_ID,
        )
    # SQLite: the WAL is copied into the database file by a thread of its own, as the
    # server does, not by whichever commit comes after the import's (the upkeep's first):
    # a 1M-row import's ~1 GB of WAL is copied while the new rows are indexed for search,
    # on the other core (the command ~2.9 s sooner, docs/benchmarks.md, session 31).
    engine = make_engine(
        settings.resolved_database_url,
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        cache_mb=settings.sqlite_cache_mb,
        background_checkpoints=settings.is_sqlite,
    )
    checkpoints = Checkpointer(engine) if settings.is_sqlite else None
    if checkpoints is not None:
        checkpoints.start()
    sessions = make_sessionmaker(engine)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task(f"Checking {file.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            upkeep = run_job(
                settings, sessions, job.id, on_progress=progress, claimed=True, defer_upkeep=True
            )
        with transaction(settings, write=False) as session:
            organization = account_service.get_organization(session, org)
            final = service.get(session, organization, job.id)
            if as_json:  # whole, written as read from the staging file (memory stays flat)
                job_json = json.dumps(final.model_dump(mode="json"), ensure_ascii=False)
                dupes = service.duplicates_json(session, settings, organization, job.id)
                errs = service.errors_json(session, settings, organization, job.id)
            else:
                more = SHOWN + 1  # the first of each; how many there are, counted apart
                duplicates = service.duplicates(session, settings, organization, job.id, limit=more)
                errors = service.errors(session, settings, organization, job.id, limit=more)
                counts = service.problem_counts(session, settings, organization, job.id)
        if as_json:
            write = sys.stdout.write
            write(f'{{"job":{job_json},"duplicates":')
            for piece in dupes:
                write(piece)
            write(',"errors":')
            for piece in errs:
                write(piece)
            out("}")
        else:
            _print_result(final.status, final.message or "", duplicates, errors, counts)
        if upkeep is not None:
            # The outcome is known and shown; the new contacts are searchable already
            # (unindexed rows are read directly) and are indexed before the command ends.
            with (
                err.status("Indexing the new contacts for search…")
                if not as_json
                else nullcontext()
            ):
                upkeep()
    finally:
        if checkpoints is not None:
            checkpoints.stop()  # and a last checkpoint of what the upkeep wrote
        dispose(engine)

    if final.status == "completed":
        return
    if final.status == "rejected" and not final.rows_total:
        raise typer.Exit(EXIT_USAGE)  # the file itself could not be read
    raise typer.Exit(EXIT_REJECTED)


# Entries of each table a rejected import prints (a 1M-row file can hold ~10,000 groups,
# matches and invalid cells: --json and the report have them all), and row numbers a group.
SHOWN = 200
ROWS_SHOWN = 20


def _print_result(
    status: str,
    message: str,
    duplicates: DuplicatesRead,
    errors: list[RowErrorRead],
    counts: ProblemCounts,
) -> None:
    colour = {"completed": "green", "rejected": "red", "failed": "red"}.get(status, "yellow")
    err.print(f"[{colour}]{status}[/{colour}]: {message}")
    in_file, existing = duplicates.in_file, duplicates.existing
    if in_file:
        table = Table(title="Duplicated in the file", show_lines=False)
        for name in ("key", "value", "rows"):
            table.add_column(name, overflow="fold")
        for group, count in zip(in_file[:SHOWN], counts.group_rows, strict=False):
            rows = ", ".join(str(r.row) for r in group.rows[:ROWS_SHOWN])
            if count > ROWS_SHOWN:
                rows += f" and {count - ROWS_SHOWN} more"
            table.add_row(group.key, group.value, rows)
        err.print(table)
        _more(counts.in_file, "values")
    if existing:
        table = Table(title="Already in your contacts")
        for name in ("row", "key", "value", "contact"):
            table.add_column(name)
        for item in existing[:SHOWN]:
            table.add_row(str(item.row), item.key, item.value, item.contact_id)
        err.print(table)
        _more(counts.existing, "rows")
    if errors:
        table = Table(title="Invalid cells")
        for name in ("row", "column", "value", "message"):
            table.add_column(name, overflow="fold")
        for e in errors[:SHOWN]:
            table.add_row(str(e.row), e.column, e.value, e.message)
        err.print(table)
        _more(counts.errors, "cells")


def _more(count: int, what: str) -> None:
    if count > SHOWN:
        err.print(f"… and {count - SHOWN} more {what}; use --json for all of them.")


def export(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the file."),
    org: str = typer.Option(..., "--org", help="Organization slug."),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx."),
) -> None:
    """Write all contacts of the organization in the template's columns."""
    if fmt not in ("csv", "xlsx"):
        err.print("[red]Error:[/red] --format must be csv or xlsx.")
        raise typer.Exit(EXIT_USAGE)
    with transaction(write=False) as session:
        organization = account_service.get_organization(session, org)
        header, pages = export_pages(session, organization, ContactFilter())
        written = 0

        def counted() -> Iterator[Columns]:
            nonlocal written
            for page in pages:
                written += len(page[0])
                yield page

        if fmt == "xlsx":
            write_xlsx(output, header, counted())
        else:
            with output.open("wb") as f:
                f.writelines(csv_page_chunks(header, counted()))
    err.print(f"Wrote {written} contact(s) to {output}.")


def template(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the template."),
    org: str | None = typer.Option(
        None, "--org", help="Include this organization's custom fields."
    ),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx."),
) -> None:
    """Write the import template."""
    if fmt not in ("csv", "xlsx"):
        err.print("[red]Error:[/red] --format must be csv or xlsx.")
        raise typer.Exit(EXIT_USAGE)
    fields = []
    if org:
        with transaction(write=False) as session:
            organization = account_service.get_organization(session, org)
            fields = custom_field_service.specs(session, organization.id)
    write_template(output, fmt, fields)
    err.print(f"Wrote the {fmt} template to {output}.")


def register(app: typer.Typer) -> None:
    app.command("import")(import_file)
    app.command("export")(export)
    app.command("template")(template)
