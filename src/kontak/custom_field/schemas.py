"""Custom field shapes of the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CustomFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    label: str | None = None
    type: str = "text"
    required: bool = False
    options: list[str] = Field(default_factory=list)


class CustomFieldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    label: str
    type: str
    required: bool
    options: list[str]
    created_at: datetime
