"""Import jobs keep the key and parameters of their message, to show it in any language.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 22:46:18.425456
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_data", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_column("message_data")
