"""Tag shapes of the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class TagRead(BaseModel):
    id: str
    name: str
    contact_count: int
    created_at: datetime
