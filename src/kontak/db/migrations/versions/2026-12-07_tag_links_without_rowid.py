"""SQLite: the tag links' table is its primary key's B-tree (``WITHOUT ROWID``).

As a rowid table ``contact_tag`` kept every link twice besides its tag index: in the
table (by rowid) and in the automatic index of its primary key ``(contact_id, tag_id)``.
Nothing reads a link by rowid, so the table becomes the key's own B-tree: one B-tree less
to write a link into (1M generated rows: 84 MB less on disk; a 1M-row CLI import on a slow
day, six alternated pairs, the links' inserts 2.94-3.28 s against 3.33-4.02 s, the import
~0.5 s sooner, docs/benchmarks.md, session 30). The tag index ``(tag_id, contact_id)``
already holds the whole key, so its entries do not grow.

SQLite cannot change this in place: the table is rebuilt (new table, links copied in key
order, old table dropped, new one renamed, the tag index made again). This runs with
foreign keys off (``migrations/env.py``), which also checks them once before the commit.
SQLite's planner figures (``sqlite_stat1``, written by ANALYZE after big imports) are
carried over: a ``WITHOUT ROWID`` table's key has its figures under the table's own name
instead of its automatic index's. PostgreSQL's tables have no rowid: nothing changes there.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Connection

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TABLE = "contact_tag"
_ROWID_KEY = "sqlite_autoindex_contact_tag_1"  # the automatic index of a rowid table's key
_SUFFIX = " WITHOUT ROWID"


def upgrade() -> None:
    _rebuild(without_rowid=True)


def downgrade() -> None:
    _rebuild(without_rowid=False)


def _rebuild(*, without_rowid: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("rebuilding a table needs foreign keys off (see migrations/env.py)")
    create = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)
    ).scalar_one()
    body = create[create.index("(") :].removesuffix(_SUFFIX)
    indexes = (
        bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type = 'index'"
            " AND sql IS NOT NULL ORDER BY name",
            (_TABLE,),
        )
        .scalars()
        .all()
    )
    old_key, new_key = (_ROWID_KEY, _TABLE) if without_rowid else (_TABLE, _ROWID_KEY)
    figures = [
        (new_key if idx == old_key else idx, stat)
        for idx, stat in _figures(bind)
        if idx is not None  # a rowid table's line of its own (none while it has indexes)
    ]
    rebuilt = f"{_TABLE}_rebuilt"
    bind.exec_driver_sql(f"CREATE TABLE {rebuilt} {body}{_SUFFIX if without_rowid else ''}")
    bind.exec_driver_sql(
        f"INSERT INTO {rebuilt} (contact_id, tag_id, organization_id)"
        f" SELECT contact_id, tag_id, organization_id FROM {_TABLE} ORDER BY contact_id, tag_id"
    )
    bind.exec_driver_sql(f"DROP TABLE {_TABLE}")
    bind.exec_driver_sql(f"ALTER TABLE {rebuilt} RENAME TO {_TABLE}")
    for sql in indexes:
        bind.exec_driver_sql(sql)
    if figures:
        bind.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = ?", (_TABLE,))
        for idx, stat in figures:
            bind.exec_driver_sql(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", (_TABLE, idx, stat)
            )


def _figures(bind: Connection) -> list[tuple[str | None, str]]:
    analyzed = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if analyzed is None:
        return []
    return [
        (idx, stat)
        for idx, stat in bind.exec_driver_sql(
            "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = ?", (_TABLE,)
        )
    ]
