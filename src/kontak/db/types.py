"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite stores them naive, so the zone is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def byte_key(length: int) -> String:
    """A ``String(length)`` that PostgreSQL compares byte by byte (``COLLATE "C"``), as
    SQLite does every string: for the ids and identity keys of the contact tables, whose
    B-tree indexes a big import fills a million times over. The database's own collation
    (``C.UTF-8``, ``en_US.UTF-8``…) compares through the C library's ``strcoll``, which
    made keeping those indexes ~12% dearer (migration 0012). Equality is the same either
    way; only the order of such keys could differ, and ids, E.164 phones and lower-cased
    keys sort the same or closer to what users expect."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")
