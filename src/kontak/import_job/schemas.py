"""Import shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

OnExisting = Literal["reject", "skip", "update"]


class ImportJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    filename: str
    format: str | None
    on_existing: str
    dry_run: bool
    rows_total: int
    rows_processed: int
    created: int
    updated: int
    skipped: int
    duplicate_count: int
    error_count: int
    created_at: datetime
    finished_at: datetime | None
    message: str | None


class ImportJobPage(BaseModel):
    items: list[ImportJobRead]
    next_cursor: str | None


class DuplicateRow(BaseModel):
    row: int
    cells: dict[str, str]


class InFileDuplicate(BaseModel):
    key: str
    value: str
    rows: list[DuplicateRow]


class ExistingDuplicate(BaseModel):
    row: int
    key: str
    value: str
    contact_id: str


class DuplicatesRead(BaseModel):
    in_file: list[InFileDuplicate]
    existing: list[ExistingDuplicate]


class RowErrorRead(BaseModel):
    row: int
    column: str
    value: str
    message: str
