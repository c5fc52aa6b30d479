"""Each organization counts the changes of its custom fields.

``organization.custom_fields_version`` goes up by one in the transaction of every change
to the organization's custom fields. The sign-in of every request reads the organization
row, so the request knows the version without a statement of its own, and a server
process keeps the fields' specs of each version it has read
(``kontak.custom_field.service.specs``): a create no longer reads them from the database.
On PostgreSQL that read was a round trip of every create and update
(docs/benchmarks.md, session 18).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organization") as batch:
        batch.add_column(
            sa.Column("custom_fields_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("organization") as batch:
        batch.drop_column("custom_fields_version")
