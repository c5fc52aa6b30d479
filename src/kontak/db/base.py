"""Declarative base with a constraint naming convention, and the id and clock helpers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from kontak.ids import id_sequence, id_start, new_id, sequence_from

__all__ = ["Base", "id_sequence", "id_start", "new_id", "sequence_from", "utcnow"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite full-text indexes made by migration 0004 (FTS5 virtual tables and their shadow
# tables), the pending ranges of migration 0006 (kontak.db.search_index), and PostgreSQL's
# trigram table and its pending ranges (migration 0008): not models; schema comparisons
# skip them.
SEARCH_TABLES = ("contact_search", "social_search", "search_pending", "contact_trigram")


def is_search_table(name: str | None) -> bool:
    return bool(name) and str(name).startswith(SEARCH_TABLES)


# PostgreSQL trigram indexes (GIN, pg_trgm) made by migrations 0005 and 0008: not in the
# models.
TRIGRAM_INDEXES = (
    "ix_contact_trigram_name_trgm",
    "ix_contact_trigram_email_key_trgm",
    "ix_contact_trigram_phone_trgm",
    "ix_social_account_handle_key_trgm",
)


# PostgreSQL's index of a channel's contacts (migration 0013): not on SQLite, so not in
# the models either.
POSTGRESQL_ONLY_INDEXES = (*TRIGRAM_INDEXES, "ix_contact_organization_id_channel_id")


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's filter: every name but the search indexes' and PostgreSQL's own."""
    if type_ == "index" and name in POSTGRESQL_ONLY_INDEXES:
        return False
    return not (type_ == "table" and is_search_table(name))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)
