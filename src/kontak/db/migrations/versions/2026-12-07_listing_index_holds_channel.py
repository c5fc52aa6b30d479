"""The contacts' listing index holds the channel too: ``(organization_id, id)`` becomes
``(organization_id, id, channel)``.

SQLite has no index of each channel's contacts (it would cost its import 8-15%,
migration 0013), so a filter by a channel that few contacts hold walks the contacts
newest first. With the channel in the listing index the walk tests it there and reads a
contact's row only when the channel matches, instead of reading every row: 1M contacts,
a channel none holds, a slow day, ``channel=facebook`` 369-645 ms -> 112-168 ms,
``q=budi&channel=facebook`` 657-815 ms -> 121-148 ms (docs/benchmarks.md, session 29).
The index gets no more entries, only a few bytes each: no cost to a 1M-row import was
seen on either engine. PostgreSQL (15) tests a plain index scan's filters on the row, so
it gains nothing there; the index is the same on both engines so that the models are one
schema.

SQLite's planner figures for the old index (``sqlite_stat1``, written by ANALYZE after
big imports) are carried over to the new one, so that its choices do not change before
the next ANALYZE. ``kontak db upgrade`` of 1M contacts on a slow day: 5.0 s on SQLite
(the index alone built in ~1.2 s), 2.5 s on PostgreSQL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_OLD = ("ix_contact_organization_id_id", ["organization_id", "id"])
_NEW = ("ix_contact_organization_id_id_channel", ["organization_id", "id", "channel"])


def upgrade() -> None:
    op.create_index(_NEW[0], "contact", _NEW[1])
    # A channel's column adds one figure: the rows per (organization, id, channel), one.
    _carry_sqlite_figures(_OLD[0], _NEW[0], lambda stat: f"{stat} 1")
    op.drop_index(_OLD[0], table_name="contact")


def downgrade() -> None:
    op.create_index(_OLD[0], "contact", _OLD[1])
    _carry_sqlite_figures(_NEW[0], _OLD[0], lambda stat: stat.rsplit(" ", 1)[0])
    op.drop_index(_NEW[0], table_name="contact")


def _carry_sqlite_figures(old: str, new: str, stat_of: Callable[[str], str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    analyzed = bind.execute(
        sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    ).first()
    if analyzed is None:
        return
    row = bind.execute(
        sa.text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'contact' AND idx = :old"),
        {"old": old},
    ).first()
    if row is None:
        return
    bind.execute(
        sa.text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('contact', :new, :stat)"),
        {"new": new, "stat": stat_of(row[0])},
    )
