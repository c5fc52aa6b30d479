"""Substring search indexes (SQLite): FTS5 trigram indexes of contact names, email keys and
phones, and of social handles, kept in step with their tables by triggers.

They serve the list's ``q`` (case-insensitive substring) from an index instead of a scan
(1M contacts, a rare name: ~1 s -> a few ms). External-content tables: the text stays in
``contact`` and ``social_account``; the index holds which rows hold which trigrams
(``detail=none``: no positions, half the cost to build; the rows it finds are candidates
that the query's LIKE conditions then decide). PostgreSQL is left as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Names every tool must leave alone (see kontak.db.base.SEARCH_TABLES).
STATEMENTS = [
    "CREATE VIRTUAL TABLE contact_search USING fts5("
    "name, email_key, phone, content='contact', content_rowid='rowid', tokenize='trigram',"
    " detail=none)",
    "CREATE VIRTUAL TABLE social_search USING fts5("
    "handle_key, content='social_account', content_rowid='rowid', tokenize='trigram',"
    " detail=none)",
    """CREATE TRIGGER contact_search_insert AFTER INSERT ON contact BEGIN
         INSERT INTO contact_search (rowid, name, email_key, phone)
         VALUES (new.rowid, new.name, new.email_key, new.phone);
       END""",
    """CREATE TRIGGER contact_search_delete AFTER DELETE ON contact BEGIN
         INSERT INTO contact_search (contact_search, rowid, name, email_key, phone)
         VALUES ('delete', old.rowid, old.name, old.email_key, old.phone);
       END""",
    """CREATE TRIGGER contact_search_update AFTER UPDATE OF name, email_key, phone ON contact
       BEGIN
         INSERT INTO contact_search (contact_search, rowid, name, email_key, phone)
         VALUES ('delete', old.rowid, old.name, old.email_key, old.phone);
         INSERT INTO contact_search (rowid, name, email_key, phone)
         VALUES (new.rowid, new.name, new.email_key, new.phone);
       END""",
    """CREATE TRIGGER social_search_insert AFTER INSERT ON social_account BEGIN
         INSERT INTO social_search (rowid, handle_key) VALUES (new.rowid, new.handle_key);
       END""",
    """CREATE TRIGGER social_search_delete AFTER DELETE ON social_account BEGIN
         INSERT INTO social_search (social_search, rowid, handle_key)
         VALUES ('delete', old.rowid, old.handle_key);
       END""",
    """CREATE TRIGGER social_search_update AFTER UPDATE OF handle_key ON social_account BEGIN
         INSERT INTO social_search (social_search, rowid, handle_key)
         VALUES ('delete', old.rowid, old.handle_key);
         INSERT INTO social_search (rowid, handle_key) VALUES (new.rowid, new.handle_key);
       END""",
    "INSERT INTO contact_search (contact_search) VALUES ('rebuild')",
    "INSERT INTO social_search (social_search) VALUES ('rebuild')",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    try:  # SQLite before 3.34, or built without FTS5: no indexes, search stays with LIKE
        bind.exec_driver_sql("CREATE VIRTUAL TABLE temp.probe USING fts5(x, tokenize='trigram')")
        bind.exec_driver_sql("DROP TABLE temp.probe")
    except Exception:
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in (
        "contact_search_insert",
        "contact_search_delete",
        "contact_search_update",
        "social_search_insert",
        "social_search_delete",
        "social_search_update",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS contact_search")
    op.execute("DROP TABLE IF EXISTS social_search")
