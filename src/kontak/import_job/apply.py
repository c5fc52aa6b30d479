"""The decisive step of an import: in ONE transaction, find what the file would collide with,
then write every contact of the file, or nothing.

Returns an :class:`Outcome`; the caller records it on the job. A lost race against another
writer (a unique index refuses a row) rolls everything back and is re-checked, so that the
conflict is reported like any other duplicate of an existing contact.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kontak.contact import repository as contact_repository
from kontak.contact.validate import ContactValues, Social
from kontak.db.base import utcnow
from kontak.db.models import Organization, SocialAccount
from kontak.db.session import begin_write
from kontak.import_job import bulk
from kontak.import_job.staging import Stage
from kontak.tag import service as tag_service

ON_EXISTING = ("reject", "skip", "update")


@dataclass(slots=True)
class Outcome:
    status: str  # completed | rejected
    created: int = 0
    updated: int = 0
    skipped: int = 0
    duplicate_rows: int = 0
    error_count: int = 0
    in_file_groups: int = 0
    existing_rows: int = 0
    ambiguous_rows: int = 0
    notes: list[str] = field(default_factory=list)


def apply(
    sessions: sessionmaker[Session],
    org: Organization,
    stage: Stage,
    *,
    on_existing: str,
    dry_run: bool,
    source: str,
) -> Outcome:
    """Check the staged file against the database and write it whole, or not at all."""
    groups = stage.duplicate_groups()
    for attempt in range(3):
        session = sessions()
        try:
            begin_write(session)
            outcome = _attempt(
                session, org, stage, groups, on_existing=on_existing, dry_run=dry_run, source=source
            )
            if outcome.status == "completed" and not dry_run:
                session.commit()
            else:
                session.rollback()
            return outcome
        except Exception as exc:
            session.rollback()
            # Another writer took one of our identities after we looked: look again, and
            # the next attempt reports it as a match of an existing contact.
            if attempt == 2 or not bulk.is_integrity_error(session, exc):
                raise
        finally:
            session.close()
    raise AssertionError("unreachable")


def _attempt(
    session: Session,
    org: Organization,
    stage: Stage,
    groups: list[Any],
    *,
    on_existing: str,
    dry_run: bool,
    source: str,
) -> Outcome:
    bulk.load_keys(session, stage.keys())
    stage.save_existing(bulk.existing_matches(session, org.id))
    bulk.drop_keys(session)
    ambiguous = stage.ambiguous_rows()
    stage.replace_ambiguity_errors(ambiguous)
    errors = stage.count_errors()
    existing_rows = stage.count_existing_rows()
    blocking = on_existing == "reject" and existing_rows > 0

    outcome = Outcome(
        status="completed",
        error_count=errors,
        in_file_groups=len(groups),
        existing_rows=existing_rows,
        ambiguous_rows=len(ambiguous),
        duplicate_rows=stage.count_duplicate_rows(with_existing=blocking),
    )
    if errors or groups or blocking:
        outcome.status = "rejected"
        return outcome

    now = utcnow()
    tag_ids = {
        t.name: t.id for t in tag_service.ensure_tags(session, org.id, stage.meta("tags", []))
    }
    outcome.created = bulk.insert_contacts(
        session, org.id, stage.valid_rows(new_only=True), source=source, now=now
    )
    bulk.insert_socials(
        session, org.id, ((cid, p, h, k) for _row, cid, p, h, k in stage.socials(new_only=True))
    )
    bulk.insert_tag_links(
        session,
        org.id,
        (
            (r[1], tag_ids[t])
            for r in stage.valid_rows(new_only=True)
            for t in bulk.parse_json(r[9], [])
        ),
    )
    if on_existing == "update":
        outcome.updated = _update_matched(session, org, stage, stage.matched_rows(), tag_ids)
    else:
        outcome.skipped = existing_rows
    session.flush()
    return outcome


def _update_matched(
    session: Session,
    org: Organization,
    stage: Stage,
    matched: dict[int, str],
    tag_ids: dict[str, str],
) -> int:
    """Filled cells replace the stored values, blank cells leave them; tags and social
    accounts are added."""
    socials_of: dict[int, list[Social]] = defaultdict(list)
    for row, _cid, platform, handle, _key in stage.socials():
        if row in matched:
            socials_of[row].append(Social(platform, handle))
    count = 0
    for (
        row,
        _cid,
        name,
        email,
        email_key,
        phone,
        channel,
        address,
        custom,
        tags,
    ) in stage.valid_rows():
        contact_id = matched.get(row)
        if contact_id is None:
            continue
        contact = contact_repository.get(session, org.id, contact_id)
        if contact is None:
            continue
        values = ContactValues(
            name=name,
            email=email,
            email_key=email_key,
            phone=phone,
            channel=channel,
            address=address,
        )
        contact.name = values.name or contact.name
        if values.email:
            contact.email, contact.email_key = values.email, values.email_key
        for attr in ("phone", "channel", "address"):
            if getattr(values, attr):
                setattr(contact, attr, getattr(values, attr))
        merged = dict(contact.custom_fields or {})
        merged.update(bulk.parse_json(custom, {}))
        contact.custom_fields = merged
        have = {(s.platform, s.handle_key) for s in contact.social_accounts}
        for social in socials_of.get(row, []):
            if (social.platform, social.key) not in have:
                contact.social_accounts.append(
                    SocialAccount(
                        organization_id=org.id,
                        platform=social.platform,
                        handle=social.handle,
                        handle_key=social.key,
                    )
                )
        contact.updated_at = utcnow()
        new_tags = [t.id for t in contact.tags] + [tag_ids[t] for t in bulk.parse_json(tags, [])]
        session.flush()
        contact_repository.set_tags(session, contact, new_tags)
        count += 1
    return count
