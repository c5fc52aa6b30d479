"""SQL for tags."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from kontak.db.base import new_id, utcnow
from kontak.db.models import ContactTag, Tag
from kontak.db.types import UTCDateTime


def list_with_counts(
    session: Session, organization_id: str, limit: int | None = None, prefix: str | None = None
) -> list[tuple[Tag, int]]:
    # Counted per tag on the links' tag_id index (a tag's links are its organization's).
    count = select(func.count()).where(ContactTag.tag_id == Tag.id).scalar_subquery()
    query = select(Tag, count).where(*_named(organization_id, prefix)).order_by(Tag.name)
    rows = session.execute(query.limit(limit))
    return [(tag, int(n)) for tag, n in rows]


def names(
    session: Session, organization_id: str, limit: int | None = None, prefix: str | None = None
) -> list[str]:
    query = select(Tag.name).where(*_named(organization_id, prefix)).order_by(Tag.name)
    return list(session.scalars(query.limit(limit)))


def _named(organization_id: str, prefix: str | None) -> list[Any]:
    """The organization's tags, those whose name starts with ``prefix`` when given (names
    and prefixes are lower-case; ``%`` and ``_`` in it are plain characters)."""
    where: list[Any] = [Tag.organization_id == organization_id]
    if prefix:
        where.append(Tag.name.startswith(prefix, autoescape=True))
    return where


def count(session: Session, organization_id: str) -> int:
    total = session.scalar(select(func.count()).where(Tag.organization_id == organization_id))
    return int(total or 0)


def get_by_names(session: Session, organization_id: str, names: Iterable[str]) -> dict[str, Tag]:
    wanted = list(set(names))
    if not wanted:
        return {}
    tags = session.scalars(
        select(Tag).where(Tag.organization_id == organization_id, Tag.name.in_(wanted))
    )
    return {tag.name: tag for tag in tags}


def ids_by_names(session: Session, organization_id: str, names: Sequence[str]) -> dict[str, str]:
    """The ids of those of ``names`` that are tags of the organization, by name. The names
    go as one value (an array; JSON on SQLite): a file can name a million tags, and every
    engine caps a statement's values (PostgreSQL's protocol at 65,535)."""
    if not names:
        return {}
    rows = session.execute(
        _IDS_BY_NAMES[_engine(session)], {"org": organization_id, "names": _many(session, names)}
    )
    return {str(name): str(tag_id) for name, tag_id in rows}


def insert_missing(session: Session, organization_id: str, names: Sequence[str]) -> None:
    """Create the tags ``names`` in one statement; a name another writer has taken
    meanwhile is left to it (``ON CONFLICT DO NOTHING``)."""
    if not names:
        return
    ids = [new_id() for _ in names]
    values: dict[str, object] = {"org": organization_id, "now": utcnow()}
    if _engine(session) == "postgresql":
        values.update(ids=ids, names=list(names))
    else:  # one array of pairs: two json_each joined by position loop over each other
        values.update(pairs=json.dumps(list(zip(ids, names, strict=True))))
    session.execute(_INSERT_MISSING[_engine(session)], values)


def _engine(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _many(session: Session, values: Sequence[str]) -> object:
    return list(values) if _engine(session) == "postgresql" else json.dumps(list(values))


_IDS_BY_NAMES = {
    "postgresql": text(
        "SELECT name, id FROM tag WHERE organization_id = :org AND name = ANY(:names)"
    ),
    "sqlite": text(
        "SELECT name, id FROM tag WHERE organization_id = :org"
        " AND name IN (SELECT value FROM json_each(:names))"
    ),
}
_NOW = bindparam("now", type_=UTCDateTime())
_INSERT_MISSING = {
    "postgresql": text(
        """
        INSERT INTO tag (id, organization_id, name, created_at)
        SELECT u.id, :org, u.name, :now
          FROM unnest(CAST(:ids AS text[]), CAST(:names AS text[])) AS u(id, name)
        ON CONFLICT (organization_id, name) DO NOTHING
        """
    ).bindparams(_NOW),
    "sqlite": text(
        """
        INSERT INTO tag (id, organization_id, name, created_at)
        SELECT json_extract(value, '$[0]'), :org, json_extract(value, '$[1]'), :now
          FROM json_each(:pairs)
         WHERE true  -- else SQLite's parser may read ON CONFLICT as a join's constraint
        ON CONFLICT (organization_id, name) DO NOTHING
        """
    ).bindparams(_NOW),
}


def get_by_name(session: Session, organization_id: str, name: str) -> Tag | None:
    return get_by_names(session, organization_id, [name]).get(name)


def add(session: Session, tag: Tag) -> None:
    session.add(tag)
    session.flush()
