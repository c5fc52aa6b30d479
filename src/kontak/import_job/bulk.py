"""Set-based SQL of an import, inside the runner's one transaction.

Loads the staged identity keys into a temporary table and joins it against the
organization's contacts; inserts the new contacts, social accounts and tag links in bulk
(PostgreSQL: COPY; SQLite: executemany on the raw connection). This module is the import's
repository: all of its SQL is here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from kontak.db.base import new_id

KEY_TABLE = "import_key_tmp"


def is_integrity_error(session: Session, exc: BaseException) -> bool:
    """True for a unique-index refusal, raised by SQLAlchemy or by the raw driver (COPY)."""
    if isinstance(exc, IntegrityError):
        return True
    dbapi = session.get_bind().dialect.dbapi
    return dbapi is not None and isinstance(exc, dbapi.IntegrityError)


def is_database_error(exc: BaseException) -> bool:
    """True for errors raised by a database driver, wrapped by SQLAlchemy or not."""
    if isinstance(exc, DBAPIError):
        return True
    module = type(exc).__module__
    return module.startswith(("psycopg", "sqlite3")) or type(exc).__name__ in {
        "OperationalError",
        "InterfaceError",
    }


def _raw(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Append ``rows`` to ``table`` on the session's connection; returns how many."""
    raw = _raw(session)
    count = 0
    if _is_postgres(session):
        cols = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    marks = ", ".join("?" * len(columns))
    cols = ", ".join(f'"{c}"' for c in columns)
    cursor = raw.cursor()
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 10_000:
            cursor.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', batch)
            count += len(batch)
            batch.clear()
    if batch:
        cursor.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', batch)
        count += len(batch)
    cursor.close()
    return count


def load_keys(session: Session, keys: Iterable[tuple[int, str, str]]) -> None:
    """Put the file's identity keys in a temporary table (dropped at commit/rollback end)."""
    if _is_postgres(session):
        session.execute(
            text(f"CREATE TEMP TABLE {KEY_TABLE} (row integer, kind text, key text) ON COMMIT DROP")
        )
    else:
        session.execute(text(f"DROP TABLE IF EXISTS temp.{KEY_TABLE}"))
        session.execute(text(f"CREATE TEMP TABLE {KEY_TABLE} (row INTEGER, kind TEXT, key TEXT)"))
    copy_rows(session, KEY_TABLE, ("row", "kind", "key"), keys)
    session.execute(text(f"CREATE INDEX ix_{KEY_TABLE} ON {KEY_TABLE} (kind, key)"))
    if _is_postgres(session):
        session.execute(text(f"ANALYZE {KEY_TABLE}"))


def drop_keys(session: Session) -> None:
    if not _is_postgres(session):
        session.execute(text(f"DROP TABLE IF EXISTS temp.{KEY_TABLE}"))


def existing_matches(session: Session, organization_id: str) -> Iterator[tuple[int, str, str, str]]:
    """(row, kind, stored value, contact id) for every key that an existing contact holds."""
    result = session.execute(
        text(
            f"""
            SELECT k.row, k.kind, c.email, c.id FROM {KEY_TABLE} k
              JOIN contact c ON c.organization_id = :org AND c.email_key = k.key
             WHERE k.kind = 'email'
            UNION ALL
            SELECT k.row, k.kind, c.phone, c.id FROM {KEY_TABLE} k
              JOIN contact c ON c.organization_id = :org AND c.phone = k.key
             WHERE k.kind = 'phone'
            UNION ALL
            SELECT k.row, k.kind, s.handle, s.contact_id FROM {KEY_TABLE} k
              JOIN social_account s
                ON s.organization_id = :org AND s.platform = k.kind AND s.handle_key = k.key
            """
        ),
        {"org": organization_id},
    )
    for row, kind, value, contact_id in result:
        yield int(row), str(kind), str(value), str(contact_id)


def _timestamp(session: Session, now: datetime) -> Any:
    # SQLite keeps SQLAlchemy's naive text form; PostgreSQL takes the aware datetime.
    if _is_postgres(session):
        return now
    return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_contacts(
    session: Session,
    organization_id: str,
    rows: Iterable[tuple[Any, ...]],
    *,
    source: str,
    now: datetime,
) -> int:
    """Insert staged rows ``(row, contact_id, name, email, email_key, phone, channel,
    address, custom_fields json, tags json)``."""
    stamp = _timestamp(session, now)

    def records() -> Iterator[tuple[Any, ...]]:
        for _row, cid, name, email, email_key, phone, channel, address, custom, _tags in rows:
            yield (
                cid,
                organization_id,
                name,
                email,
                email_key,
                phone,
                channel,
                address,
                custom or "{}",
                source,
                stamp,
                stamp,
            )

    return copy_rows(
        session,
        "contact",
        (
            "id",
            "organization_id",
            "name",
            "email",
            "email_key",
            "phone",
            "channel",
            "address",
            "custom_fields",
            "source",
            "created_at",
            "updated_at",
        ),
        records(),
    )


def insert_socials(
    session: Session, organization_id: str, socials: Iterable[tuple[str, str, str, str]]
) -> int:
    """Insert ``(contact id, platform, handle, handle key)`` social accounts."""
    return copy_rows(
        session,
        "social_account",
        ("id", "organization_id", "contact_id", "platform", "handle", "handle_key"),
        ((new_id(), organization_id, cid, p, h, k) for cid, p, h, k in socials),
    )


def insert_tag_links(
    session: Session, organization_id: str, links: Iterable[tuple[str, str]]
) -> int:
    """Insert ``(contact id, tag id)`` links."""
    return copy_rows(
        session,
        "contact_tag",
        ("contact_id", "tag_id", "organization_id"),
        ((cid, tid, organization_id) for cid, tid in links),
    )


def parse_json(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default
