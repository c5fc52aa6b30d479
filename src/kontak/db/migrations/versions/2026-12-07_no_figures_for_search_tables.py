"""SQLite: no planner figures for the search indexes' own tables.

The planner statistics that a big import refreshes (ANALYZE) were taken before the import's
rows were in the search indexes, so ``sqlite_stat1`` said each index's ``<index>_data``
table held a couple of rows. SQLite then planned FTS5's delete of a merged segment's pages
(``DELETE FROM <index>_data WHERE id>=? AND id<=?``) as a scan of the whole table: at a
million contacts each merge step of the server's search catch-up read the whole index,
26-65 ms holding the write turn, where seeking the range takes 1-4 ms
(docs/benchmarks.md, session 34). Since then the refresh leaves these tables out
(``search_index.forget_planner_figures``); this drops what earlier refreshes wrote.
Without figures SQLite assumes a big table and seeks. PostgreSQL has no such tables.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# FTS5's tables of the indexes contact_search and social_search (migration 0004), as they
# stand at this revision.
_TABLES = tuple(
    f"{index}_{part}"
    for index in ("contact_search", "social_search")
    for part in ("data", "idx", "config", "docsize", "content")
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    marks = ", ".join("?" * len(_TABLES))
    for figures in ("sqlite_stat1", "sqlite_stat4"):
        present = bind.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (figures,)
        ).first()
        if present:
            bind.exec_driver_sql(f"DELETE FROM {figures} WHERE tbl IN ({marks})", _TABLES)


def downgrade() -> None:
    """Nothing to restore: the figures were wrong, and ANALYZE writes them again."""
