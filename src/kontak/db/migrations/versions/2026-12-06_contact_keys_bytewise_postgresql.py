"""PostgreSQL: the ids and identity keys of the contact tables compare byte by byte.

Their columns take ``COLLATE "C"`` (``kontak.db.types.byte_key``): ``contact.id``,
``organization_id``, ``email_key`` and ``phone``; ``social_account.id``,
``organization_id``, ``contact_id``, ``platform`` and ``handle_key``; every column of
``contact_tag``; ``contact_trigram.contact_id`` and ``organization_id``. With the
database's own collation (``C.UTF-8`` on the bench machine, often ``en_US.UTF-8``) every
comparison inside their B-tree indexes went through the C library's ``strcoll``: a COPY
of 1M contacts into the table with its four indexes took 10.4 s, 9.2 s with these
collations; whole imports of 1M rows, three alternated pairs, 25.2 -> 23.7 s (medians;
docs/benchmarks.md, session 21). Equality is the same under both (both are
deterministic); the order of such values could differ only for punctuation and case, and
ids, E.164 phones and lower-cased keys now sort as SQLite sorts them.

Changing a column's collation rebuilds its indexes and checks the foreign keys that use
it again: 6.9 s for 1M contacts on the bench machine, under a lock of the tables. The
trigger that keeps ``contact_trigram`` in step names ``contact.email_key`` and
``phone``, so it is dropped and made again around the change. The changed columns lose
their planner statistics, so the tables are analyzed at the end. SQLite compares bytes
already: nothing to do.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# (table, column, length)
COLUMNS = (
    ("contact", "id", 26),
    ("contact", "organization_id", 26),
    ("contact", "email_key", 320),
    ("contact", "phone", 20),
    ("social_account", "id", 26),
    ("social_account", "organization_id", 26),
    ("social_account", "contact_id", 26),
    ("social_account", "platform", 20),
    ("social_account", "handle_key", 100),
    ("contact_tag", "contact_id", 26),
    ("contact_tag", "tag_id", 26),
    ("contact_tag", "organization_id", 26),
)
# Made by migration 0008 where pg_trgm could be installed; not a model.
TRIGRAM_COLUMNS = (
    ("contact_trigram", "contact_id", 26),
    ("contact_trigram", "organization_id", 26),
)
TRIGGER = "contact_trigram_write"


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')


def _collate(collation: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    columns = list(COLUMNS)
    if bind.exec_driver_sql("SELECT to_regclass('contact_trigram')").scalar():
        columns += TRIGRAM_COLUMNS
    trigger = bind.exec_driver_sql(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgname = %(name)s AND tgrelid = 'contact'::regclass",
        {"name": TRIGGER},
    ).scalar()
    if trigger:
        op.execute(f"DROP TRIGGER {TRIGGER} ON contact")
    tables = dict.fromkeys(table for table, _, _ in columns)
    for table in tables:
        changes = ", ".join(
            f"ALTER COLUMN {column} TYPE VARCHAR({length}) COLLATE {collation}"
            for t, column, length in columns
            if t == table
        )
        op.execute(f"ALTER TABLE {table} {changes}")
    if trigger:
        op.execute(trigger)
    # A column's new type leaves it without planner statistics, and nothing else would
    # gather them again until enough rows change: 1M contacts, searches took 50-60 ms
    # instead of 7-10 (estimates of ~350 accounts a contact id).
    op.execute(f"ANALYZE {', '.join(tables)}")
