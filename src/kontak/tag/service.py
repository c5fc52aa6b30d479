"""Listing and creating tags, and finding-or-creating the tags a contact names."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from kontak.contact.normalize import InvalidValue, normalize_tag
from kontak.db.models import Organization, Tag
from kontak.errors import Conflict, FieldError, InvalidInput
from kontak.tag import repository
from kontak.tag.schemas import TagCreate, TagRead

# Tags a page offers (a filter's choices, a form's suggestions, the settings' list), the
# first by name: an import can make a tag a row, and 200,000 tags made the contacts page
# 10 MB and 200,000 elements (20 s to load), as the settings page.
TAGS_SHOWN = 200


def list_tags(
    session: Session, org: Organization, *, limit: int | None = None, prefix: str | None = None
) -> list[TagRead]:
    """The organization's tags by name (all, or the first ``limit``; with ``prefix``, those
    whose name starts with it, in any letter case), with how many contacts carry each."""
    if prefix is not None:
        prefix = _prefix(prefix)
        if prefix is None:
            return []
    return [
        TagRead(id=tag.id, name=tag.name, contact_count=n, created_at=tag.created_at)
        for tag, n in repository.list_with_counts(session, org.id, limit, prefix)
    ]


def _prefix(text: str) -> str | None:
    """A typed start of a tag name as tags are kept (trimmed, lower-case); None when no
    tag can start with it (a comma, or longer than a tag)."""
    if not text.strip():
        return ""
    try:
        return normalize_tag(text)
    except InvalidValue:
        return None


def tag_names(session: Session, org: Organization, *, limit: int | None = None) -> list[str]:
    """The organization's tag names, sorted (all, or the first ``limit``), without counting
    their contacts (which reads every tag link: ~75 ms at a million contacts)."""
    return repository.names(session, org.id, limit)


def count_tags(session: Session, org: Organization) -> int:
    return repository.count(session, org.id)


def create_tag(session: Session, org: Organization, data: TagCreate) -> TagRead:
    """Create one tag; a name that exists in any letter case is a conflict."""
    try:
        name = normalize_tag(data.name)
    except InvalidValue as exc:
        raise InvalidInput(str(exc), [FieldError("name", str(exc))]) from None
    if name is None:
        raise InvalidInput("Give the tag a name.", [FieldError("name", "Give the tag a name.")])
    if repository.get_by_name(session, org.id, name) is not None:
        raise Conflict(f"The tag '{name}' already exists.")
    tag = Tag(organization_id=org.id, name=name)
    repository.add(session, tag)
    return TagRead(id=tag.id, name=tag.name, contact_count=0, created_at=tag.created_at)


def ensure_tags(session: Session, org_id: str, names: Sequence[str]) -> dict[str, str]:
    """The ids of the tags named (already normalized), by name in the order given; those
    that do not exist yet are created in bulk. Tag by tag, each in a savepoint of its own,
    a file naming 200,000 tags took ~60 s more to import on SQLite; on PostgreSQL one
    look-up of more than 65,535 names failed the import."""
    wanted = list(dict.fromkeys(names))
    found = repository.ids_by_names(session, org_id, wanted)
    for _ in range(3):
        missing = [name for name in wanted if name not in found]
        if not missing:
            break
        repository.insert_missing(session, org_id, missing)
        # Ours, or another writer's that ON CONFLICT left alone (committed: READ COMMITTED
        # sees it now; SQLite has one writer at a time).
        found.update(repository.ids_by_names(session, org_id, missing))
    return {name: found[name] for name in wanted}
