"""Contacts, their social accounts and their tags.

Identity is enforced by unique indexes within the organization: one contact per
``email_key`` (the lower-cased email), per E.164 ``phone`` and per ``(platform, handle_key)``.
Their keys lead with the value and end with the organization (migration 0009): a
comparison then stops at the value instead of first comparing the same 26-character
organization id, which made keeping the indexes ~17% dearer in bulk writes. On PostgreSQL
the ids and keys of these tables compare byte by byte (``byte_key``, migration 0012).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kontak.db.base import Base, new_id, utcnow
from kontak.db.models.tag import Tag
from kontak.db.types import UTCDateTime, byte_key


class Contact(Base):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("email_key", "organization_id"),
        UniqueConstraint("phone", "organization_id"),
        # The listing index, newest first; the channel in it lets SQLite's walk for a
        # channel read only the rows that hold it (migration 0014).
        Index("ix_contact_organization_id_id_channel", "organization_id", "id", "channel"),
    )

    id: Mapped[str] = mapped_column(byte_key(26), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("organization.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(byte_key(320))
    phone: Mapped[str | None] = mapped_column(byte_key(20))
    channel: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(500))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    social_accounts: Mapped[list[SocialAccount]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="SocialAccount.platform, SocialAccount.handle_key",
        passive_deletes=True,
    )
    # Read-only: links are written by the contact repository, which also sets the
    # organization_id that every contact_tag row carries.
    tags: Mapped[list[Tag]] = relationship(
        secondary="contact_tag", lazy="raise", order_by="Tag.name", viewonly=True
    )


class SocialAccount(Base):
    __tablename__ = "social_account"
    __table_args__ = (UniqueConstraint("handle_key", "platform", "organization_id"),)

    id: Mapped[str] = mapped_column(byte_key(26), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("organization.id", ondelete="CASCADE")
    )
    contact_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(byte_key(20))
    handle: Mapped[str] = mapped_column(String(100))
    handle_key: Mapped[str] = mapped_column(byte_key(100))


class ContactTag(Base):
    __tablename__ = "contact_tag"
    # A tag belongs to one organization: its id alone finds its links (counts, the cascade
    # of a tag's deletion), and with the contact's, newest first (the filter by tag).
    # Partial on PostgreSQL so that a look-up by contact_id cannot read it whole instead
    # of the primary key (migration 0011). On SQLite the table is its primary key's B-tree
    # (WITHOUT ROWID, migration 0015): a rowid table kept the links twice, in the table and
    # in the key's index, and a 1M-row import spent ~14% less on its links without it.
    __table_args__ = (
        Index(
            "ix_contact_tag_tag_id_contact_id",
            "tag_id",
            "contact_id",
            postgresql_where=text("tag_id IS NOT NULL"),
        ),
        {"sqlite_with_rowid": False},
    )

    contact_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(
        byte_key(26), ForeignKey("organization.id", ondelete="CASCADE")
    )
