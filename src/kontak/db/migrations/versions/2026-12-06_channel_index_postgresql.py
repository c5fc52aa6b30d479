"""PostgreSQL: an index on ``contact (organization_id, channel, id)``.

A filter by a channel that few contacts hold walked every contact newest first on
PostgreSQL, and with a tag or a text it checked every tagged or matching contact instead
(1M contacts, a channel none holds, a slow day: ``channel=facebook`` 102 ms,
``channel=facebook&tag=vip`` 2.5 s, ``q=budi&channel=facebook`` 1.9 s). With this index a
channel's contacts are read newest first, and a channel that few contacts hold gives
them all at once (docs/benchmarks.md, session 26).

PostgreSQL only: on SQLite, whose import of 1M rows is bound by its one writer's B-tree
work, the index cost 8-15% of that import (two alternated pairs: 16.70 / 18.45 s
without, 19.47 / 19.74 s with), and its worst channel filters there take 0.16-0.35 s.
Not in the models, like the trigram indexes (kontak.db.base.POSTGRESQL_ONLY_INDEXES).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NAME = "ix_contact_organization_id_channel_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(NAME, "contact", ["organization_id", "channel", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(NAME, table_name="contact")
