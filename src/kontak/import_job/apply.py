"""The decisive step of an import: in ONE transaction, find what the file would collide with,
then write every contact of the file, or nothing.

Returns an :class:`Outcome`; the caller records it on the job. A lost race against another
writer (a unique index refuses a row, or PostgreSQL picks this transaction as a deadlock's
victim) rolls everything back and is checked again, so that the conflict is reported like
any other match of an existing contact.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from kontak.contact import repository as contact_repository
from kontak.contact.validate import Social
from kontak.db.base import utcnow
from kontak.db.models import Contact, Organization, SocialAccount
from kontak.db.session import begin_write
from kontak.import_job import bulk
from kontak.import_job.staging import DuplicateGroup, Stage
from kontak.tag import service as tag_service

ON_EXISTING = ("reject", "skip", "update")
MAX_ATTEMPTS = 5  # lost races before giving up
log = logging.getLogger("kontak.import")


@dataclass(slots=True)
class Outcome:
    status: str  # completed | rejected
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # of the updated: those their row left as they were
    skipped: int = 0
    duplicate_rows: int = 0
    error_count: int = 0
    in_file_groups: int = 0
    existing_rows: int = 0
    ambiguous_rows: int = 0
    ambiguous: list[tuple[int, list[str]]] = field(default_factory=list, repr=False)
    groups: list[DuplicateGroup] = field(default_factory=list, repr=False)


Record = Callable[[Session, "Outcome"], None]


def apply(
    sessions: sessionmaker[Session],
    org: Organization,
    stage: Stage,
    *,
    on_existing: str,
    dry_run: bool,
    source: str,
    record: Record | None = None,
) -> Outcome:
    """Check the staged file against the database and write it whole, or not at all;
    ``record`` writes the job's end in the same transaction, just before its commit.

    A file without row errors is written before its duplicates are looked for: when the
    organization holds none of its keys, the unique indexes refuse any key two rows share,
    and the search (1M rows: ~1 s) runs only then, after the rollback. A file with errors
    is rejected whatever happens; its duplicates are found first, to be reported with them.
    """
    groups: list[DuplicateGroup] | None = None
    if stage.count_errors():
        groups = _duplicate_groups(stage)
    engine = sessions.kw["bind"]
    attempts = 0
    while True:
        # A connection of our own for the whole step, so that the staging file attached to
        # it (SQLite) is detached before anyone else can use the connection.
        with engine.connect() as connection:
            bulk.prepare_connection(connection)
            session = sessions(bind=connection)
            try:
                begin_write(session)
                bulk.attach_stage(session, stage.path)
                outcome = _attempt(
                    session, org, stage, groups, on_existing=on_existing, source=source
                )
                if outcome.status == "completed" and not dry_run:
                    committing = time.monotonic()
                    if record is not None:
                        record(session, outcome)
                    session.commit()
                    log.info("import: committed in %.2f s", elapsed(committing))
                else:
                    session.rollback()
            except Exception as exc:
                session.rollback()
                if bulk.is_rolled_back_by_the_server(exc):
                    # PostgreSQL: our rows waited on another writer's uncommitted keys while
                    # it waited on ours, and we were the deadlock's victim. Look again.
                    attempts += 1
                    if attempts == MAX_ATTEMPTS:
                        raise
                    log.info("import: lost a race with another writer (%s); again", exc)
                    continue
                if not bulk.is_integrity_error(session, exc):
                    raise
                if groups is None:
                    # Two rows of the file share a key (or another writer took one of
                    # them after we looked): find the file's duplicates, then look again.
                    log.info("import: a key is taken twice; looking for duplicates")
                    groups = _duplicate_groups(stage)
                    continue
                # Another writer took one of our identities after we looked: look again;
                # the next attempt reports it as a match of an existing contact.
                attempts += 1
                if attempts == MAX_ATTEMPTS:
                    raise
                continue
            finally:
                session.close()
                bulk.detach_stage(connection)
        # The staging file is written once the transaction is over: SQLite locks it while
        # it is attached inside the transaction.
        keep(stage, outcome)
        return outcome


def keep(stage: Stage, outcome: Outcome) -> None:
    """Record in the staging file what the report and the duplicates pages show (the
    matches of stored contacts are in it already, see ``bulk.find_existing``)."""
    stage.save_duplicate_groups(outcome.groups)
    stage.replace_ambiguity_errors(outcome.ambiguous)


def _duplicate_groups(stage: Stage) -> list[DuplicateGroup]:
    started = time.monotonic()
    groups = stage.find_duplicate_groups()
    log.info("import: %d duplicate groups found in %.2f s", len(groups), elapsed(started))
    return groups


def _attempt(
    session: Session,
    org: Organization,
    stage: Stage,
    groups: list[DuplicateGroup] | None,
    *,
    on_existing: str,
    source: str,
) -> Outcome:
    """One try in the open transaction. ``groups`` None: the file's duplicates are not
    looked for yet; they are when a row matches a stored contact (a skipped row may share
    a key with another row, which no index would then refuse)."""
    started = time.monotonic()
    bulk.find_existing(session, org.id, stage)
    matched_rows, ambiguous = stage.match_counts()
    log.info("import: %d rows match existing contacts (%.2f s)", matched_rows, elapsed(started))
    if groups is None and matched_rows:
        groups = _duplicate_groups(stage)
    errors = stage.count_errors() + len(ambiguous)
    blocking = on_existing == "reject" and matched_rows > 0
    duplicate_rows = stage.duplicate_rows(groups or [])
    duplicates = len(duplicate_rows)
    if blocking:
        duplicates += sum(1 for row in stage.matched_rows() if row not in duplicate_rows)

    outcome = Outcome(
        status="completed",
        error_count=errors,
        in_file_groups=len(groups or ()),
        existing_rows=matched_rows,
        ambiguous_rows=len(ambiguous),
        duplicate_rows=duplicates,
        ambiguous=ambiguous,
        groups=groups or [],
    )
    if errors or groups or blocking:
        outcome.status = "rejected"
        return outcome

    tag_ids = tag_service.ensure_tags(session, org.id, stage.meta("tags", []))
    started = time.monotonic()
    now = utcnow()
    outcome.created = bulk.insert_new(
        session, org.id, stage, source=source, now=now, tag_ids=tag_ids
    )
    log.info("import: %d contacts written in %.2f s", outcome.created, elapsed(started))
    if on_existing == "update":
        outcome.updated, changed, shared = bulk.update_matched(session, org.id, stage, now=now)
        if shared:
            rows, rows_changed = _update_matched(session, org, stage, shared, tag_ids)
            outcome.updated += rows
            changed += rows_changed
        outcome.unchanged = outcome.updated - changed
    else:
        outcome.skipped = matched_rows
    session.flush()
    return outcome


def elapsed(start: float) -> float:
    """Seconds since ``start`` (a ``time.monotonic()`` reading), for the import log."""
    return time.monotonic() - start


def _update_matched(
    session: Session,
    org: Organization,
    stage: Stage,
    matched: dict[int, str],
    tag_ids: dict[str, str],
) -> tuple[int, int]:
    """Filled cells replace the stored values, blank cells leave them; tags and social
    accounts are added. Returns how many rows, and how many of them changed their
    contact."""
    socials_of: dict[int, list[Social]] = defaultdict(list)
    for row, _cid, platform, handle, _key, _id in stage.socials():
        if row in matched:
            socials_of[row].append(Social(platform, handle))
    count = changed_rows = 0
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
        before = _values(contact)
        contact.name = name or contact.name
        if email:
            contact.email, contact.email_key = email, email_key
        contact.phone = phone or contact.phone
        contact.channel = channel or contact.channel
        contact.address = address or contact.address
        contact.custom_fields = {**(contact.custom_fields or {}), **bulk.parse_json(custom, {})}
        have = {(s.platform, s.handle_key) for s in contact.social_accounts}
        changed = _values(contact) != before
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
                changed = True
        stored_tags = [t.id for t in contact.tags]
        new_tags = [tag_ids[t] for t in bulk.parse_json(tags, [])]
        if not set(new_tags) <= set(stored_tags):
            changed = True
        if changed:  # as the set-based update: a row that changes nothing leaves it be
            contact.updated_at = utcnow()
            session.flush()
            contact_repository.set_tags(session, contact, stored_tags + new_tags)
            changed_rows += 1
        count += 1
    return count, changed_rows


def _values(contact: Contact) -> tuple[object, ...]:
    return (
        contact.name,
        contact.email,
        contact.email_key,
        contact.phone,
        contact.channel,
        contact.address,
        contact.custom_fields,
    )
