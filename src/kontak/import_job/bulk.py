"""Set-based SQL of an import, inside the runner's one transaction.

Loads the staged identity keys into a temporary table and joins it against the
organization's contacts; inserts the new contacts, social accounts and tag links in bulk
(PostgreSQL: COPY; SQLite: executemany on the raw connection). This module is the import's
repository: all of its SQL is here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from kontak.db import search_index
from kontak.db.session import DEFAULT_CACHE_MB, WRITE_OPTION
from kontak.import_job.staging import Stage

log = logging.getLogger("kontak.import")
KEY_TABLE = "import_key_tmp"
CONTACT_COLUMNS = (
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
)
IMPORT_CACHE_KIB = 128 * 1024


@functools.cache
def _streamed_matches() -> bool:
    """PostgreSQL: whether libpq sends a query's rows in chunks (17 on; psycopg's binary
    wheel bundles a recent one), for the matches with stored contacts (find_existing).
    Asked only there: importing psycopg is ~60 ms of every SQLite command's start."""
    from psycopg import pq

    return pq.version() >= 170000


def is_integrity_error(session: Session, exc: BaseException) -> bool:
    """True for a unique-index refusal, raised by SQLAlchemy or by the raw driver (COPY)."""
    if isinstance(exc, IntegrityError):
        return True
    dbapi = session.get_bind().dialect.dbapi
    return dbapi is not None and isinstance(exc, dbapi.IntegrityError)


def is_rolled_back_by_the_server(exc: BaseException) -> bool:
    """True when the database chose this transaction as a deadlock's victim or refused to
    serialize it (SQLSTATE class 40, PostgreSQL): a lost race, worth trying again."""
    original = getattr(exc, "orig", None) or exc
    return str(getattr(original, "sqlstate", "") or "").startswith("40")


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


def prepare_connection(connection: Connection) -> None:
    """SQLite, before the import's transaction: no per-row foreign-key checks. Every row it
    writes points at the organization, at contacts inserted in the same transaction or at
    tags it has just ensured; the pragma cannot change inside a transaction, so it is set
    here and restored in :func:`detach_stage`."""
    if connection.dialect.name == "sqlite":
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]


def attach_stage(session: Session, path: Path, schema: str = "stage") -> None:
    """SQLite: make the staging file readable as ``<schema>.*`` inside this transaction
    (the first time, with the write's settings, see :func:`prepare_write`)."""
    if not _is_postgres(session):
        prepare_write(session)
        _raw(session).execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))


def prepare_write(session: Session) -> None:
    """SQLite, once in the import's transaction: the settings of a big write, given back
    by :func:`detach_stage`."""
    info = session.connection().info
    if _is_postgres(session) or "kontak_cache_size" in info:
        return
    raw = _raw(session)
    # A bigger page cache while a million rows go into the unique indexes (about 10x
    # faster than the default 2,000 pages); the connection's own is given back in
    # detach_stage.
    info["kontak_cache_size"] = int(raw.execute("PRAGMA main.cache_size").fetchone()[0])
    raw.execute(f"PRAGMA main.cache_size = -{IMPORT_CACHE_KIB}")
    # No checkpoint inside this commit: copying a big import's pages from the WAL into
    # the database file is left to the next writer's commit, after this one is visible
    # (1M rows: the import's commit 3.4 s -> 1.1 s).
    previous = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    info["kontak_autocheckpoint"] = int(previous)
    raw.execute("PRAGMA wal_autocheckpoint = 0")


def detach_stage(connection: Connection) -> None:
    """SQLite, after the transaction: every staging file detached, the settings back."""
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        with contextlib.suppress(sqlite3.Error):
            attached = [
                name
                for _seq, name, _file in raw.execute("PRAGMA database_list")  # type: ignore[union-attr]
                if name not in ("main", "temp")
            ]
            for name in attached:
                raw.execute(f"DETACH DATABASE {name}")  # type: ignore[union-attr]
            cache = int(connection.info.pop("kontak_cache_size", -DEFAULT_CACHE_MB * 1024))
            raw.execute(f"PRAGMA main.cache_size = {cache}")  # type: ignore[union-attr]
            previous = int(connection.info.pop("kontak_autocheckpoint", 1000))
            raw.execute(f"PRAGMA wal_autocheckpoint = {previous}")  # type: ignore[union-attr]
        with contextlib.suppress(sqlite3.Error):
            raw.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def refresh_statistics(engine: Engine) -> None:
    """After a big import, fresh planner statistics: without them a million new contacts
    look like none, and PostgreSQL sorts the whole organization for a first page (98 ms)
    while SQLite walks an organization's index for a few search matches. PostgreSQL's
    ANALYZE samples (about 1 s at a million contacts); SQLite's is capped to a sample too
    (about 0.1 s)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE contact, social_account, contact_tag")
            connection.commit()
        return
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA analysis_limit = 1000")
        with connection.execution_options(**{WRITE_OPTION: True}).begin():
            raw.execute("ANALYZE")
            # Not for the search indexes' own tables, caught up only after this.
            search_index.forget_planner_figures(raw)


def holds_contacts(session: Session, organization_id: str) -> bool:
    """Whether the organization holds any contact."""
    found = session.execute(
        text("SELECT 1 FROM contact WHERE organization_id = :org LIMIT 1"), {"org": organization_id}
    ).first()
    return found is not None


def find_existing(session: Session, organization_id: str, stage: Stage) -> None:
    """Record in the staging file (``Stage.existing``) every staged key that an existing
    contact holds: (row, kind, stored value, contact id). Nothing passes through a list:
    SQLite matches on the staging file's connection, PostgreSQL's matches are written as
    they come."""
    if not holds_contacts(session, organization_id):  # a first import: nothing to match
        stage.save_existing(())
        return
    if not _is_postgres(session):
        stage.match_stored(_main_database(session), organization_id)
        return
    session.execute(
        text(f"CREATE TEMP TABLE {KEY_TABLE} (row integer, kind text, key text) ON COMMIT DROP")
    )
    _copy_text(session, KEY_TABLE, ("row", "kind", "key"), stage, _KEY_LINES, {})
    # No index: ANALYZE lets the planner hash-join the keys with the organization's
    # contacts (building an index on a temporary table of 2M keys alone took 4 s).
    session.execute(text(f"ANALYZE {KEY_TABLE}"))
    matches = f"""
    SELECT k.row, 'email', c.email, c.id FROM {KEY_TABLE} k
      JOIN contact c ON c.organization_id = %(org)s AND c.email_key = k.key
     WHERE k.kind = 'email'
    UNION ALL
    SELECT k.row, 'phone', c.phone, c.id FROM {KEY_TABLE} k
      JOIN contact c ON c.organization_id = %(org)s AND c.phone = k.key
     WHERE k.kind = 'phone'
    UNION ALL
    SELECT k.row, k.kind, s.handle, s.contact_id FROM {KEY_TABLE} k
      JOIN social_account s
        ON s.organization_id = %(org)s AND s.platform = k.kind AND s.handle_key = k.key
    """
    params = {"org": organization_id}
    raw = _raw(session)
    if _streamed_matches():
        # The server sends the matches while they are saved, 5,000 rows a chunk (a
        # re-uploaded 1M-row file: 2.4M matches, 20.3 -> 16.9 s; a server-side cursor
        # made it wait for each FETCH).
        with raw.cursor() as cursor:
            stage.save_existing(cursor.stream(matches, params, size=5000))
        return
    with raw.cursor(name="kontak_matches") as cursor:  # libpq before 17: no chunks
        cursor.itersize = 5000
        cursor.execute(matches, params)
        stage.save_existing(cursor)


def _main_database(session: Session) -> str:
    """SQLite: the file of the connection's main database."""
    for _seq, name, file in _raw(session).execute("PRAGMA database_list"):
        if name == "main":
            return str(file)
    raise RuntimeError("no main database")  # pragma: no cover - SQLite always has one


def _sqlite_timestamp(now: datetime) -> str:
    """``now`` in the naive UTC text form SQLAlchemy keeps in SQLite."""
    return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_new(
    session: Session,
    organization_id: str,
    stage: Stage,
    *,
    source: str,
    now: datetime,
    tag_ids: dict[str, str],
    schema: str = "stage",
) -> int:
    """Insert the staged valid rows with their social accounts and tag links, but those
    that match stored contacts (:func:`find_existing`); returns how many contacts. SQLite
    reads them from the staging file attached as ``schema``; PostgreSQL from ``stage``."""
    if _is_postgres(session):
        return _copy_new(session, organization_id, stage, source, now, tag_ids)
    return _insert_new_sqlite(session, organization_id, source, now, schema)


def _insert_new_sqlite(
    session: Session,
    organization_id: str,
    source: str,
    now: datetime,
    schema: str,
) -> int:
    # Set-based: the rows go from the attached staging file to the tables inside SQLite.
    raw = _raw(session)
    params = {"org": organization_id, "source": source, "now": _sqlite_timestamp(now)}
    new = f"r.valid = 1 AND r.row NOT IN (SELECT row FROM {schema}.matched)"
    # The new rows are indexed for search after the commit (search_index.catch_up).
    deferrals = [search_index.defer(raw, t) for t in ("contact", "social_account")]
    started = time.monotonic()
    created = raw.execute(
        f"""
        INSERT INTO contact ({", ".join(CONTACT_COLUMNS)})
        SELECT r.contact_id, :org, r.name, r.email, r.email_key, r.phone, r.channel, r.address,
               CASE WHEN r.custom_fields = '' THEN '{{}}' ELSE r.custom_fields END,
               :source, :now, :now
          FROM {schema}.row r WHERE {new} ORDER BY r.row
        """,
        params,
    ).rowcount
    started = _logged("contacts", started)
    if created:  # accounts and links of new contacts only (a re-upload: none)
        raw.execute(
            f"""
            INSERT INTO social_account
                   (id, organization_id, contact_id, platform, handle, handle_key)
            SELECT k.id, :org, r.contact_id, k.kind, k.display, k.key
              FROM {schema}.key k JOIN {schema}.row r ON r.row = k.row
             WHERE {new} AND k.kind NOT IN ('email', 'phone')
            """,
            params,
        )
        started = _logged("social accounts", started)
        raw.execute(
            f"""
            INSERT OR IGNORE INTO contact_tag (contact_id, tag_id, organization_id)
            SELECT r.contact_id, t.id, :org
              FROM {schema}.tag_link l JOIN {schema}.row r ON r.row = l.row
              JOIN tag t ON t.organization_id = :org AND t.name = l.name
             WHERE {new}
            """,
            params,
        )
        _logged("tag links", started)
    for deferral in deferrals:
        if deferral is not None:
            search_index.close(raw, deferral)
    return int(created)


# What each updating row brings: its contact, then the staged values (blank: NULL, the
# stored value stays).
_UPDATE_COLUMNS = (
    "contact_id",
    "name",
    "email",
    "email_key",
    "phone",
    "channel",
    "address",
    "custom_fields",
)
_UPDATE_VALUES = ("m.contact_id", *(f"NULLIF(r.{c}, '')" for c in _UPDATE_COLUMNS[1:]))
# The rows that update stored contacts (SQLite, over the staging file ``{s}``): those
# that match one stored contact, which no other row matches (``:shared``, a JSON array
# of rows, are updated row by row in file order: each row's filled cells over the
# previous ones').
_UPDATING = (
    "FROM {s}matched m JOIN {s}row r ON r.row = m.row {join}"
    " WHERE r.valid = 1 AND m.row NOT IN (SELECT value FROM json_each(:shared))"
)
# Two statements, each only where it changes something. The first sets updated_at: a
# contact whose row changes nothing (no value, field, account or tag that it lacks) keeps
# its row and its updated_at. A file uploaded again unchanged then rewrites no contact:
# on PostgreSQL each rewritten row was a new version in all of the contact's indexes
# (200,000 rows: 4.9 s of the 7.6 s update) and a dead one for VACUUM. The second sets
# the searched columns (name, email, phone), so that the search indexes' update triggers
# fire for the contacts whose searched values change alone. ``import_added`` holds the
# contacts that get an account or a tag they lacked (a set, looked up by hash: an EXISTS
# over the staged accounts for each contact, inside the OR, ran for minutes).
_SEARCHED_CHANGE = """(u.name IS NOT NULL AND u.name IS DISTINCT FROM contact.name
       OR u.email IS NOT NULL AND (u.email IS DISTINCT FROM contact.email
                                   OR u.email_key IS DISTINCT FROM contact.email_key)
       OR u.phone IS NOT NULL AND u.phone IS DISTINCT FROM contact.phone)"""
_UPDATE_PLAIN = f"""
UPDATE contact SET
  channel = COALESCE(u.channel, contact.channel),
  address = COALESCE(u.address, contact.address),
  custom_fields = CASE WHEN u.custom_fields IS NULL THEN contact.custom_fields
                       ELSE {{merged}} END,
  updated_at = :now
FROM import_update u
WHERE contact.id = u.contact_id AND contact.organization_id = :org
  AND ({_SEARCHED_CHANGE}
       OR u.channel IS NOT NULL AND u.channel IS DISTINCT FROM contact.channel
       OR u.address IS NOT NULL AND u.address IS DISTINCT FROM contact.address
       OR u.custom_fields IS NOT NULL AND {{fields_change}}
       OR u.contact_id IN (SELECT contact_id FROM import_added))
"""
_UPDATE_SEARCHED = f"""
UPDATE contact SET
  name = COALESCE(u.name, contact.name),
  email = COALESCE(u.email, contact.email),
  email_key = COALESCE(u.email_key, contact.email_key),
  phone = COALESCE(u.phone, contact.phone)
FROM import_update u
WHERE contact.id = u.contact_id AND contact.organization_id = :org
  AND {_SEARCHED_CHANGE}
"""
# The contacts the rows update (each counts, whether its row changes it or not); on
# PostgreSQL another writer may have deleted some since they were matched.
_COUNT_UPDATING = """
SELECT count(*) FROM import_update u
  JOIN contact ON contact.id = u.contact_id AND contact.organization_id = :org
"""
# SQLite: the contacts that the inserts of accounts and links gave one: the accounts past
# the table's last rowid before (SQLite numbers a new row one past the greatest), and the
# links gathered first (their table has no rowid, migration 0015). On PostgreSQL the
# inserts return them.
_ADDED_SQLITE = """
INSERT OR IGNORE INTO import_added
SELECT contact_id FROM social_account WHERE rowid > :accounts
UNION ALL SELECT contact_id FROM temp.import_links
"""
# Custom fields: the file's values over the stored ones, the stored keys in their order
# and new keys after them (as Python's {**stored, **new}). The staged values are never
# null nor objects, so SQLite's json_patch does exactly that.
_MERGED_SQLITE = "json_patch(contact.custom_fields, u.custom_fields)"
# Whether the merge changes the stored fields: SQLite compares them as minified text (the
# stored text has Python's spaces); PostgreSQL asks whether the stored fields hold each of
# the file's (values are scalars: a key held with the same value).
_FIELDS_CHANGE_SQLITE = f"{_MERGED_SQLITE} IS NOT json(contact.custom_fields)"
_FIELDS_CHANGE_POSTGRES = "NOT (contact.custom_fields::jsonb @> u.custom_fields::jsonb)"
_MERGED_POSTGRES = """(
  SELECT json_object_agg(f.key, f.value ORDER BY f.pos) FROM (
    SELECT s.key, COALESCE(n.value, s.value) AS value, s.pos
      FROM json_each(contact.custom_fields) WITH ORDINALITY AS s(key, value, pos)
      LEFT JOIN json_each(u.custom_fields::json) AS n(key, value) ON n.key = s.key
    UNION ALL
    SELECT n.key, n.value, 1000000 + n.pos
      FROM json_each(u.custom_fields::json) WITH ORDINALITY AS n(key, value, pos)
     WHERE NOT EXISTS (SELECT 1 FROM json_each(contact.custom_fields) AS o(key, value)
                        WHERE o.key = n.key)
  ) f)"""


def update_matched(
    session: Session, organization_id: str, stage: Stage, *, now: datetime
) -> tuple[int, int, dict[int, str]]:
    """Update, set-based, the stored contacts that one row of the file each matches: a
    filled cell replaces the stored value, a blank cell leaves it, custom fields are
    merged, social accounts and tags are added. Returns how many, how many of them their
    row changed, and {row: contact id} of the rows whose contact other rows match too,
    for the caller to apply row by row.

    Before, every matched row cost an ORM load, flush and tag rewrite: 20,000 rows took
    56 s, a re-uploaded 1M-row file would have taken most of an hour."""
    started = time.monotonic()
    shared = stage.shared_matches()
    params: dict[str, Any] = {"org": organization_id, "shared": json.dumps(list(shared))}
    if _is_postgres(session):
        updated, changed = _update_postgres(session, stage, params, now)
    else:
        updated, changed = _update_sqlite(session, params, now)
    log.info(
        "import: %d contacts updated (%d changed) in %.2f s",
        updated,
        changed,
        time.monotonic() - started,
    )
    return updated, changed, shared


def _update_sqlite(session: Session, params: dict[str, Any], now: datetime) -> tuple[int, int]:
    raw = _raw(session)
    started = time.monotonic()
    temps = ("import_update", "import_added", "import_links")
    for temp in temps:
        raw.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    raw.execute(
        "CREATE TEMP TABLE import_update (row INTEGER PRIMARY KEY, "
        + ", ".join(f"{c} TEXT" for c in _UPDATE_COLUMNS)
        + ")"
    )
    raw.execute("CREATE TEMP TABLE import_added (contact_id TEXT PRIMARY KEY) WITHOUT ROWID")
    raw.execute(
        "CREATE TEMP TABLE import_links (contact_id TEXT, tag_id TEXT,"
        " PRIMARY KEY (contact_id, tag_id)) WITHOUT ROWID"
    )
    # Their contacts are all stored: the rows matched them in this write transaction.
    updated = raw.execute(
        f"INSERT INTO temp.import_update SELECT m.row, {', '.join(_UPDATE_VALUES)} "
        + _UPDATING.format(s="stage.", join=""),
        params,
    ).rowcount
    params = {**params, "now": _sqlite_timestamp(now)}
    started = _logged("rows to update", started)
    try:
        # The accounts and links first: what they add says which contacts change.
        last = "SELECT coalesce(max(rowid), 0) FROM social_account"
        params["accounts"] = raw.execute(last).fetchone()[0]
        raw.execute(
            """
            INSERT OR IGNORE INTO social_account
                   (id, organization_id, contact_id, platform, handle, handle_key)
            SELECT k.id, :org, u.contact_id, k.kind, k.display, k.key
              FROM temp.import_update u JOIN stage.key k ON k.row = u.row
             WHERE k.kind NOT IN ('email', 'phone')
            """,
            params,
        )
        started = _logged("social accounts added", started)
        # The links not stored yet, each once, in key order; then written.
        raw.execute(
            """
            INSERT OR IGNORE INTO temp.import_links (contact_id, tag_id)
            SELECT u.contact_id, t.id
              FROM temp.import_update u JOIN stage.tag_link l ON l.row = u.row
              JOIN tag t ON t.organization_id = :org AND t.name = l.name
             WHERE NOT EXISTS (SELECT 1 FROM contact_tag ct
                                WHERE ct.contact_id = u.contact_id AND ct.tag_id = t.id)
            """,
            params,
        )
        raw.execute(
            "INSERT INTO contact_tag (contact_id, tag_id, organization_id)"
            " SELECT contact_id, tag_id, :org FROM temp.import_links",
            params,
        )
        started = _logged("tag links added", started)
        raw.execute(_ADDED_SQLITE, params)
        plain = _UPDATE_PLAIN.format(merged=_MERGED_SQLITE, fields_change=_FIELDS_CHANGE_SQLITE)
        changed = raw.execute(plain, params).rowcount
        started = _logged("updates of unsearched columns", started)
        raw.execute(_UPDATE_SEARCHED, params)
        _logged("updates of searched columns", started)
    finally:
        for temp in temps:
            raw.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return int(updated), int(changed)


def _update_postgres(
    session: Session, stage: Stage, params: dict[str, Any], now: datetime
) -> tuple[int, int]:
    tables = {
        "import_update": (_UPDATE_COLUMNS, [*_UPDATE_VALUES]),
        "import_update_social": (
            ("id", "contact_id", "platform", "handle", "handle_key"),
            ["k.id", "m.contact_id", "k.kind", "k.display", "k.key"],
        ),
        "import_update_tag": (("contact_id", "name"), ["m.contact_id", "l.name"]),
    }
    joins = {
        "import_update": "",
        "import_update_social": "JOIN key k ON k.row = m.row AND k.kind NOT IN ('email', 'phone')",
        "import_update_tag": "JOIN tag_link l ON l.row = m.row",
    }
    for table, (columns, values) in tables.items():
        session.execute(
            text(
                f"CREATE TEMP TABLE {table} ("
                + ", ".join(f"{c} text" for c in columns)
                + ") ON COMMIT DROP"
            )
        )
        lines = (
            "SELECT "
            + _line(*(_quoted(v) for v in values))
            + " "
            + _UPDATING.format(s="", join=joins[table])
        )
        _copy_text(session, table, columns, stage, lines, {"shared": params["shared"]})
    session.execute(text("ANALYZE import_update"))
    session.execute(text("CREATE TEMP TABLE import_added (contact_id text) ON COMMIT DROP"))
    params = {"org": params["org"], "now": now}
    started = time.monotonic()
    updated = session.scalar(text(_COUNT_UPDATING), params)
    # The accounts and links first: what they add says which contacts change. Those
    # already stored are left out by an anti-join, not by ON CONFLICT alone (which probes
    # the unique index row by row: 1M links already there, 5.4 -> 1.7 s). The organization
    # is cast alike in both places (psycopg's parameter got two types otherwise).
    session.execute(
        text(
            """
            WITH added AS (
              INSERT INTO social_account
                     (id, organization_id, contact_id, platform, handle, handle_key)
              SELECT id, CAST(:org AS text), contact_id, platform, handle, handle_key
                FROM import_update_social k
               WHERE NOT EXISTS (SELECT 1 FROM social_account a
                                  WHERE a.handle_key = k.handle_key AND a.platform = k.platform
                                    AND a.organization_id = CAST(:org AS text))
              ON CONFLICT DO NOTHING
              RETURNING contact_id)
            INSERT INTO import_added SELECT contact_id FROM added
            """
        ),
        params,
    )
    started = _logged("social accounts added", started)
    session.execute(
        text(
            """
            WITH added AS (
              INSERT INTO contact_tag (contact_id, tag_id, organization_id)
              SELECT DISTINCT u.contact_id, t.id, :org
                FROM import_update_tag u
                JOIN tag t ON t.organization_id = :org AND t.name = u.name
               WHERE NOT EXISTS (SELECT 1 FROM contact_tag ct
                                  WHERE ct.contact_id = u.contact_id AND ct.tag_id = t.id)
              ON CONFLICT DO NOTHING
              RETURNING contact_id)
            INSERT INTO import_added SELECT contact_id FROM added
            """
        ),
        params,
    )
    started = _logged("tag links added", started)
    plain = _UPDATE_PLAIN.format(merged=_MERGED_POSTGRES, fields_change=_FIELDS_CHANGE_POSTGRES)
    changed = session.execute(text(plain), params).rowcount  # type: ignore[attr-defined]
    started = _logged("updates of unsearched columns", started)
    session.execute(text(_UPDATE_SEARCHED), params)
    _logged("updates of searched columns", started)
    return int(updated), int(changed)


def _logged(what: str, started: float) -> float:
    now = time.monotonic()
    log.debug("import: %s inserted in %.2f s", what, now - started)
    return now


# A field of a CSV line that SQLite writes for COPY: its printf() format and argument.
Field = tuple[str, str]


def _quoted(column: str) -> Field:
    """A text ``column`` as a quoted field (``%w`` doubles its double quotes). NULL goes
    as ``""``, which COPY reads as NULL (``FORCE_NULL``, see :func:`_copy_text`): the
    staging file holds no empty text where a value is meant."""
    return '"%w"', f"coalesce({column}, '')"


def _plain(column: str) -> Field:
    """A column that never holds a quote, comma or line break (ids, E.164, codes); NULL
    goes as an empty field."""
    return "%s", column


def _line(*fields: Field) -> str:
    """SQLite expression: the CSV line of ``fields``, made by ONE printf() (a CASE, instr
    and concatenations a field took 2.9 s for 1M contact lines, printf 1.6 s)."""
    formats = ",".join(f for f, _ in fields)
    return f"printf('{formats}', {', '.join(a for _, a in fields)})"


_KEY_LINES = (
    "SELECT "
    + _line(_plain("r.row"), _plain("'email'"), _quoted("r.email_key"))
    + " FROM row r WHERE r.email_key <> ''"
    + " UNION ALL SELECT "
    + _line(_plain("r.row"), _plain("'phone'"), _quoted("r.phone"))
    + " FROM row r WHERE r.phone <> ''"
    + " UNION ALL SELECT "
    + _line(_plain("k.row"), _plain("k.kind"), _quoted("k.key"))
    + " FROM key k"
)
_NEW = "r.valid = 1 AND r.row NOT IN (SELECT row FROM matched)"
_CONTACT_LINES = (
    "SELECT "
    + _line(
        _plain("r.contact_id"),
        _plain(":org"),
        _quoted("r.name"),
        _quoted("r.email"),
        _quoted("r.email_key"),
        _plain("r.phone"),
        _plain("r.channel"),
        _quoted("r.address"),
        _quoted("CASE WHEN r.custom_fields = '' THEN '{}' ELSE r.custom_fields END"),
        _quoted(":source"),
        _plain(":now"),
        _plain(":now"),
    )
    + f" FROM row r WHERE {_NEW} ORDER BY r.row"
)
_SOCIAL_LINES = (
    "SELECT "
    + _line(
        _plain("k.id"),
        _plain(":org"),
        _plain("r.contact_id"),
        _plain("k.kind"),
        _quoted("k.display"),
        _quoted("k.key"),
    )
    + f" FROM key k JOIN row r ON r.row = k.row WHERE {_NEW} AND k.kind NOT IN ('email', 'phone')"
)
_TAG_LINES = (
    "SELECT "
    + _line(_plain("r.contact_id"), _plain("t.id"), _plain(":org"))
    + " FROM tag_link l JOIN row r ON r.row = l.row JOIN temp.import_tag t ON t.name = l.name"
    + f" WHERE {_NEW}"
)


def _copy_text(
    session: Session,
    table: str,
    columns: Sequence[str],
    stage: Stage,
    query: str,
    params: dict[str, Any],
) -> int:
    """COPY into ``table`` the CSV lines that ``query`` makes in the staging file: SQLite
    writes them itself, so no row is built in Python (1M contacts: 13 s -> a few)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    count, started = 0, time.monotonic()
    cursor = stage.db.cursor()
    try:
        cursor.execute(query, params)
        with (
            _raw(session).cursor() as pg,
            pg.copy(
                f'COPY "{table}" ({cols}) FROM STDIN WITH (FORMAT csv, FORCE_NULL ({cols}))'
            ) as copy,
        ):
            while lines := cursor.fetchmany(5000):
                copy.write("\n".join(line for (line,) in lines) + "\n")
                count += len(lines)
    finally:
        cursor.close()
    log.info("import: COPY of %d rows into %s in %.2f s", count, table, time.monotonic() - started)
    return count


def _copy_new(
    session: Session,
    organization_id: str,
    stage: Stage,
    source: str,
    now: datetime,
    tag_ids: dict[str, str],
) -> int:
    db = stage.db
    db.execute("DROP TABLE IF EXISTS temp.import_tag")
    db.execute("CREATE TEMP TABLE import_tag (name TEXT PRIMARY KEY, id TEXT NOT NULL)")
    db.executemany("INSERT INTO temp.import_tag VALUES (?, ?)", tag_ids.items())
    stamp = now.astimezone(UTC).isoformat()
    params = {"org": organization_id, "source": source, "now": stamp}
    # The handles' trigram index (migration 0005) takes the new rows into its pending
    # list only; search_index.catch_up merges it after the commit.
    raw = _raw(session)
    raw.execute(f"SET LOCAL gin_pending_list_limit = '{search_index.PENDING_LIST}'")
    # The contacts' trigrams (migration 0008) are written after the commit: their GIN
    # indexes were more than half of the contacts' COPY (1M: 20 s -> 9 s without them).
    trigrams = search_index.has_trigram_table(raw)
    if trigrams:
        search_index.defer_trigrams(raw, True)
    quick = _without_reference_triggers(session, organization_id, list(tag_ids.values()))
    try:
        created = _copy_text(session, "contact", CONTACT_COLUMNS, stage, _CONTACT_LINES, params)
        if trigrams and created:
            first, last = db.execute(
                f"SELECT min(r.contact_id), max(r.contact_id) FROM row r WHERE {_NEW}"
            ).fetchone()
            search_index.record_trigram_range(raw, first, last)
        if created:  # accounts and links of new contacts only (a re-upload: none, 0.5 s)
            _copy_text(
                session,
                "social_account",
                ("id", "organization_id", "contact_id", "platform", "handle", "handle_key"),
                stage,
                _SOCIAL_LINES,
                params,
            )
            _copy_text(
                session,
                "contact_tag",
                ("contact_id", "tag_id", "organization_id"),
                stage,
                _TAG_LINES,
                params,
            )
    finally:
        db.execute("DROP TABLE IF EXISTS temp.import_tag")
    if quick:
        raw.execute("SET LOCAL session_replication_role = DEFAULT")
    if trigrams:  # what this transaction writes next (updates of matched contacts) is indexed
        search_index.defer_trigrams(raw, False)
    return created


def _without_reference_triggers(session: Session, organization_id: str, tag_ids: list[str]) -> bool:
    """PostgreSQL: skip the per-row foreign-key triggers of the COPYs when the database
    role may (``session_replication_role``: a superuser, or one granted ``SET`` on it);
    they cost more than the rows themselves (1M tag links: 15 s). Every row written points
    at the organization, at contacts of this transaction or at the tags just ensured: those
    are locked ``FOR KEY SHARE`` here, which is all the triggers' checks would have done
    for them. Returns whether the triggers are off (until the end of the COPYs)."""
    import psycopg

    raw = _raw(session)
    try:
        with raw.transaction():  # a savepoint: a refusal leaves the import's transaction intact
            raw.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    raw.execute("SELECT 1 FROM organization WHERE id = %s FOR KEY SHARE", (organization_id,))
    if tag_ids:
        raw.execute("SELECT 1 FROM tag WHERE id = ANY(%s) FOR KEY SHARE", (tag_ids,))
    return True


def parse_json(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default
