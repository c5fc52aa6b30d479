"""Substring search indexes (PostgreSQL): pg_trgm GIN indexes of contact names, email keys
and phones, and of social handle keys, for the list's ``q`` (ILIKE/LIKE '%…%').

pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it. Where
it cannot be created, no index is made and search scans as before. SQLite is left as it is
(revision 0004 made its indexes).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Names every tool must leave alone (see kontak.db.base.TRIGRAM_INDEXES).
INDEXES = {
    "ix_contact_name_trgm": "contact USING gin (name gin_trgm_ops)",
    "ix_contact_email_key_trgm": "contact USING gin (email_key gin_trgm_ops)",
    "ix_contact_phone_trgm": "contact USING gin (phone gin_trgm_ops)",
    "ix_social_account_handle_key_trgm": "social_account USING gin (handle_key gin_trgm_ops)",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql("SAVEPOINT trgm")
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:
        bind.exec_driver_sql("ROLLBACK TO SAVEPOINT trgm")
        return
    bind.exec_driver_sql("RELEASE SAVEPOINT trgm")
    for name, target in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
