"""Contact shapes of the API: what clients send (loose types, checked by validation) and get."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class SocialAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str
    handle: str


class ContactCreate(BaseModel):
    """A new contact; every value is normalized by ``contact.validate``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    email: str | None = None
    phone: str | int | float | None = None
    channel: str | None = None
    address: str | None = None
    social_accounts: list[SocialAccountIn] | None = None
    tags: list[str] | str | None = None
    custom_fields: dict[str, Any] | None = None


class ContactUpdate(ContactCreate):
    """A partial update: only the fields sent are changed; ``null`` empties a field.

    ``tags`` and ``social_accounts`` replace the lists; ``custom_fields`` are merged key by
    key (a ``null`` value removes that key).
    """


class SocialAccountRead(BaseModel):
    platform: str
    handle: str


class ContactRead(BaseModel):
    id: str
    name: str
    email: str | None
    phone: str | None
    channel: str | None
    address: str | None
    social_accounts: list[SocialAccountRead]
    tags: list[str]
    custom_fields: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    items: list[ContactRead]
    next_cursor: str | None
