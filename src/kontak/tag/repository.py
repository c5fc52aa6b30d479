"""SQL for tags."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kontak.db.models import ContactTag, Tag


def list_with_counts(session: Session, organization_id: str) -> list[tuple[Tag, int]]:
    # Counted per tag on the links' tag_id index (a tag's links are its organization's).
    count = select(func.count()).where(ContactTag.tag_id == Tag.id).scalar_subquery()
    rows = session.execute(
        select(Tag, count).where(Tag.organization_id == organization_id).order_by(Tag.name)
    )
    return [(tag, int(n)) for tag, n in rows]


def names(session: Session, organization_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Tag.name).where(Tag.organization_id == organization_id).order_by(Tag.name)
        )
    )


def get_by_names(session: Session, organization_id: str, names: Iterable[str]) -> dict[str, Tag]:
    wanted = list(set(names))
    if not wanted:
        return {}
    tags = session.scalars(
        select(Tag).where(Tag.organization_id == organization_id, Tag.name.in_(wanted))
    )
    return {tag.name: tag for tag in tags}


def get_by_name(session: Session, organization_id: str, name: str) -> Tag | None:
    return get_by_names(session, organization_id, [name]).get(name)


def add(session: Session, tag: Tag) -> None:
    session.add(tag)
    session.flush()
