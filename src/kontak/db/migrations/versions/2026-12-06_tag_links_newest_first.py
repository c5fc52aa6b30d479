"""The tag links' index holds the contact too: ``(tag_id)`` becomes ``(tag_id, contact_id)``.

The filter by tag then reads a tag's links newest contact first from the index and stops
at a page, however far back the tagged contacts are. Before, both engines walked every
contact newest first and looked each one's links up: with 374,000 untagged contacts on
top of 1M (a recent big import), ``tag=vip`` took 250 ms (SQLite) and 560 ms (PostgreSQL)
(docs/benchmarks.md, session 19). The new index still serves a tag's count and the
cascade of its deletion (``tag_id`` leads).

On PostgreSQL the index is partial, ``WHERE tag_id IS NOT NULL`` (every link's, the
column is NOT NULL), so that only a query on ``tag_id`` may use it. As a full index it
could serve a look-up by ``contact_id`` too, by reading all of it, and where the
statistics said the links' table was empty (every link deleted, not yet vacuumed) the
planner chose it as often as the primary key for the cascade of each deleted contact:
20,000 links, 2,000 contacts deleted, 30 ms → 1.25 s; the test suite's cleanup of
200,000 contacts ran for minutes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD = ("ix_contact_tag_tag_id", ["tag_id"])
_NEW = ("ix_contact_tag_tag_id_contact_id", ["tag_id", "contact_id"])


def upgrade() -> None:
    op.create_index(_NEW[0], "contact_tag", _NEW[1], postgresql_where=sa.text("tag_id IS NOT NULL"))
    op.drop_index(_OLD[0], table_name="contact_tag")


def downgrade() -> None:
    op.create_index(_OLD[0], "contact_tag", _OLD[1])
    op.drop_index(_NEW[0], table_name="contact_tag", postgresql_where=sa.text("tag_id IS NOT NULL"))
