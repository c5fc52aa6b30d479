"""Deferred search indexing (SQLite): rows an import writes are indexed after its commit.

Indexing a million contacts through the per-row triggers of revision 0004 took longer than
writing them (1M contacts: 3.0 s to write, +6.8 s for the triggers; the same rows indexed
in one statement afterwards: ~5 s). An import now records the rowids it is about to write
as a *pending range* in ``search_pending``; the triggers leave rows inside a pending range
alone, and ``kontak.db.search_index.catch_up`` indexes them later, a batch per transaction,
shrinking the range as it goes. The invariant, kept by every statement: a row is in the
search index if and only if its rowid is in no pending range. While a range is pending,
searches decide by LIKE alone (correct, just slower).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 04:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _triggers(guarded: bool) -> dict[str, str]:
    """The six triggers of revision 0004, each guarded by the pending ranges or not."""

    def when(table: str, row: str) -> str:
        if not guarded:
            return ""
        return (
            f"WHEN NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.name = '{table}'"
            f" AND {row}.rowid BETWEEN p.first_rowid AND p.last_rowid)"
        )

    return {
        "contact_search_insert": f"""AFTER INSERT ON contact {when("contact", "new")} BEGIN
             INSERT INTO contact_search (rowid, name, email_key, phone)
             VALUES (new.rowid, new.name, new.email_key, new.phone);
           END""",
        "contact_search_delete": f"""AFTER DELETE ON contact {when("contact", "old")} BEGIN
             INSERT INTO contact_search (contact_search, rowid, name, email_key, phone)
             VALUES ('delete', old.rowid, old.name, old.email_key, old.phone);
           END""",
        "contact_search_update": f"""AFTER UPDATE OF name, email_key, phone ON contact
           {when("contact", "old")} BEGIN
             INSERT INTO contact_search (contact_search, rowid, name, email_key, phone)
             VALUES ('delete', old.rowid, old.name, old.email_key, old.phone);
             INSERT INTO contact_search (rowid, name, email_key, phone)
             VALUES (new.rowid, new.name, new.email_key, new.phone);
           END""",
        "social_search_insert": f"""AFTER INSERT ON social_account
           {when("social_account", "new")} BEGIN
             INSERT INTO social_search (rowid, handle_key) VALUES (new.rowid, new.handle_key);
           END""",
        "social_search_delete": f"""AFTER DELETE ON social_account
           {when("social_account", "old")} BEGIN
             INSERT INTO social_search (social_search, rowid, handle_key)
             VALUES ('delete', old.rowid, old.handle_key);
           END""",
        "social_search_update": f"""AFTER UPDATE OF handle_key ON social_account
           {when("social_account", "old")} BEGIN
             INSERT INTO social_search (social_search, rowid, handle_key)
             VALUES ('delete', old.rowid, old.handle_key);
             INSERT INTO social_search (rowid, handle_key) VALUES (new.rowid, new.handle_key);
           END""",
    }


def _has_search_indexes() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "sqlite" and bool(
        bind.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contact_search'"
        ).first()
    )


def upgrade() -> None:
    if not _has_search_indexes():  # PostgreSQL, or a SQLite without FTS5 trigrams
        return
    op.execute(
        "CREATE TABLE search_pending ("
        "name TEXT NOT NULL, first_rowid INTEGER NOT NULL, last_rowid INTEGER NOT NULL)"
    )
    for name, body in _triggers(guarded=True).items():
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if not _has_search_indexes():
        return
    for name, body in _triggers(guarded=False).items():
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")
    # Rows left pending were never indexed: the old triggers expect every row indexed.
    op.execute("INSERT INTO contact_search (contact_search) VALUES ('rebuild')")
    op.execute("INSERT INTO social_search (social_search) VALUES ('rebuild')")
    op.execute("DROP TABLE search_pending")
