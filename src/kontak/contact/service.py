"""Creating, reading, updating, deleting and listing contacts.

Identity (email, phone, social account) is checked before writing so that the 409 can name
the existing contact, and the unique indexes settle any race: an insert that loses one is
turned into the same 409.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kontak.contact import repository
from kontak.contact.normalize import (
    InvalidValue,
    country_code,
    normalize_channel,
    normalize_email,
    normalize_phone,
    normalize_tag,
)
from kontak.contact.repository import ContactFilter
from kontak.contact.schemas import (
    ContactCreate,
    ContactPage,
    ContactRead,
    ContactUpdate,
    SocialAccountRead,
)
from kontak.contact.validate import ContactValues, Social, check_reachable, validate_contact
from kontak.custom_field import service as custom_field_service
from kontak.db.base import new_id, utcnow
from kontak.db.models import Contact, Organization, SocialAccount
from kontak.errors import Conflict, ConflictItem, FieldError, InvalidInput, NotFound
from kontak.tag import service as tag_service

MAX_LIMIT = 200
_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_PHONE_QUERY = re.compile(r"^[\d\s+().\-]+$")


def to_read(contact: Contact, *, tag_names: list[str] | None = None) -> ContactRead:
    """The API shape of a contact; ``tag_names`` when its tags are not loaded (just made)."""
    accounts = sorted(contact.social_accounts, key=lambda s: (s.platform, s.handle_key))
    return _read(
        contact,
        [(s.platform, s.handle) for s in accounts],
        tag_names if tag_names is not None else [t.name for t in contact.tags],
    )


def _read(columns: Any, accounts: list[tuple[str, str]], tags: list[str]) -> ContactRead:
    """A contact's API shape from its own columns (an object or a row, read by attribute),
    its accounts as (platform, handle) in their order, and its tag names."""
    return ContactRead(
        id=columns.id,
        name=columns.name,
        email=columns.email,
        phone=columns.phone,
        channel=columns.channel,
        address=columns.address,
        social_accounts=[
            SocialAccountRead(platform=platform, handle=handle) for platform, handle in accounts
        ],
        tags=tags,
        custom_fields=dict(columns.custom_fields or {}),
        source=columns.source,
        created_at=columns.created_at,
        updated_at=columns.updated_at,
    )


def create(
    session: Session, org: Organization, data: ContactCreate, *, source: str = "api"
) -> ContactRead:
    """Create a contact; InvalidInput lists every bad field, Conflict every taken identity."""
    raw = data.model_dump(exclude_none=False)
    values, errors = validate_contact(
        raw, region=org.default_region, fields=custom_field_service.kept_specs(session, org)
    )
    contact_values = ContactValues(**values) if not errors else ContactValues()
    if not errors:
        errors = check_reachable(contact_values)
    if errors:
        raise InvalidInput("The contact is not valid; correct the fields listed.", errors)

    now = utcnow()
    read = ContactRead(
        id=new_id(),
        name=contact_values.name,
        email=contact_values.email,
        phone=contact_values.phone,
        channel=contact_values.channel,
        address=contact_values.address,
        social_accounts=[
            SocialAccountRead(platform=s.platform, handle=s.handle)
            for s in sorted(contact_values.social_accounts, key=lambda s: (s.platform, s.key))
        ],
        tags=[],
        custom_fields={k: v for k, v in contact_values.custom_fields.items() if v is not None},
        source=source,
        created_at=now,
        updated_at=now,
    )
    tag_ids = tag_service.ensure_tags(session, org.id, contact_values.tags)
    _insert_or_conflict(session, org.id, contact_values, read)
    repository.link_tags(session, org.id, read.id, list(tag_ids.values()))
    # Everything is known: answer without reading the contact back.
    read.tags = sorted(tag_ids)
    return read


def get(session: Session, org: Organization, contact_id: str) -> ContactRead:
    return to_read(_get(session, org, contact_id))


def update(
    session: Session, org: Organization, contact_id: str, data: ContactUpdate
) -> ContactRead:
    """Apply the fields sent; the result must still be a valid, reachable, unique contact."""
    contact = _get(session, org, contact_id)
    raw = data.model_dump(exclude_unset=True)
    values, errors = validate_contact(
        raw,
        region=org.default_region,
        fields=custom_field_service.kept_specs(session, org),
        partial=True,
    )
    if errors:
        raise InvalidInput("The change is not valid; correct the fields listed.", errors)
    merged = _merge(contact, values)
    errors = check_reachable(merged)
    if errors:
        raise InvalidInput("The contact would have no way to reach it.", errors)
    _raise_conflicts(session, org.id, merged, exclude_id=contact.id)

    contact.name = merged.name
    contact.email, contact.email_key = merged.email, merged.email_key
    contact.phone = merged.phone
    contact.channel = merged.channel
    contact.address = merged.address
    contact.custom_fields = merged.custom_fields
    if "social_accounts" in values:
        contact.social_accounts = _reuse_socials(org.id, contact, merged.social_accounts)
    contact.updated_at = utcnow()
    _flush_or_conflict(session, org.id, merged, contact)
    if "tags" in values:
        tag_ids = tag_service.ensure_tags(session, org.id, merged.tags)
        repository.set_tags(session, contact, list(tag_ids.values()))
    return get(session, org, contact.id)


def delete(session: Session, org: Organization, contact_id: str) -> None:
    """Delete a contact with its social accounts and tag links."""
    if not repository.delete_one(session, org.id, contact_id):
        raise _not_found(contact_id)


def list_contacts(
    session: Session,
    org: Organization,
    *,
    q: str | None = None,
    tag: str | None = None,
    channel: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ContactPage:
    """One page of contacts, newest first; ``next_cursor`` fetches the next page."""
    filters = build_filter(org, q=q, tag=tag, channel=channel)
    before_id = _decode_cursor(cursor) if cursor else None
    limit = max(1, min(limit, MAX_LIMIT))
    rows = repository.list_page(session, org.id, filters, limit=limit + 1, before_id=before_id)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(rows[-1].id) if more and rows else None
    tags, accounts = repository.links_of_page(session, [row.id for row in rows])
    items = [_read(row, accounts.get(row.id, []), tags.get(row.id, [])) for row in rows]
    return ContactPage(items=items, next_cursor=next_cursor)


def build_filter(
    org: Organization, *, q: str | None, tag: str | None, channel: str | None
) -> ContactFilter:
    """Turn the list's query parameters into a repository filter (shared with export)."""
    errors: list[FieldError] = []
    norm_channel = norm_tag = None
    try:
        norm_channel = normalize_channel(channel) if channel else None
    except InvalidValue as exc:
        errors.append(FieldError("channel", str(exc)))
    try:
        norm_tag = normalize_tag(tag) if tag else None
    except InvalidValue as exc:
        errors.append(FieldError("tag", str(exc)))
    if errors:
        raise InvalidInput("The filters are not valid.", errors)
    text = (q or "").strip() or None
    exact = _exact_identity(text, org.default_region) if text else None
    if exact is not None:
        # A whole phone number or email address: one indexed look-up, not a scan.
        field, value = exact
        return ContactFilter(
            exact_phone=value if field == "phone" else None,
            exact_email=value if field == "email" else None,
            tag=norm_tag,
            channel=norm_channel,
        )
    phone_prefix = phone_digits = None
    if text and _PHONE_QUERY.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 3:
            phone_digits = digits
            if text.startswith("+"):
                phone_prefix = "+" + digits
            elif digits.startswith("0"):
                phone_prefix = "+" + country_code(org.default_region) + digits[1:]
    return ContactFilter(
        text=text,
        # "@budi_ig" finds the handle budi_ig (stored without the @), as well as the
        # emails and names that hold "@budi_ig".
        handle_text=text[1:] if text and text.startswith("@") and len(text) > 1 else None,
        phone_prefix=phone_prefix,
        phone_digits=phone_digits,
        tag=norm_tag,
        channel=norm_channel,
    )


def _exact_identity(text: str, region: str) -> tuple[str, str] | None:
    """("phone", E.164) or ("email", key) when ``q`` is a whole, valid phone or email."""
    try:
        if "@" in text:
            email = normalize_email(text)
            return ("email", email[1]) if email else None
        if _PHONE_QUERY.match(text) and len(re.sub(r"\D", "", text)) >= 8:
            phone = normalize_phone(text, region)
            return ("phone", phone) if phone else None
    except InvalidValue:
        return None
    return None


def _get(session: Session, org: Organization, contact_id: str) -> Contact:
    contact = repository.get(session, org.id, contact_id)
    if contact is None:
        raise _not_found(contact_id)
    return contact


def _not_found(contact_id: str) -> NotFound:
    return NotFound(f"No contact with id {contact_id} in your organization.")


def _merge(contact: Contact, values: Mapping[str, Any]) -> ContactValues:
    merged = ContactValues(
        name=contact.name,
        email=contact.email,
        email_key=contact.email_key,
        phone=contact.phone,
        channel=contact.channel,
        address=contact.address,
        social_accounts=[Social(s.platform, s.handle) for s in contact.social_accounts],
        tags=[t.name for t in contact.tags],
        custom_fields=dict(contact.custom_fields or {}),
    )
    for name, value in values.items():
        if name == "custom_fields":
            for key, item in value.items():
                if item is None:
                    merged.custom_fields.pop(key, None)
                else:
                    merged.custom_fields[key] = item
        else:
            setattr(merged, name, value)
    return merged


def _social_row(org_id: str, social: Social) -> SocialAccount:
    return SocialAccount(
        organization_id=org_id,
        platform=social.platform,
        handle=social.handle,
        handle_key=social.key,
    )


def _reuse_socials(org_id: str, contact: Contact, wanted: list[Social]) -> list[SocialAccount]:
    # Keep the rows that stay, so that a replaced list never deletes and re-inserts the same
    # (platform, handle) in one flush, which the unique index would refuse.
    current = {(s.platform, s.handle_key): s for s in contact.social_accounts}
    rows: list[SocialAccount] = []
    for social in wanted:
        row = current.get((social.platform, social.key))
        if row is None:
            row = _social_row(org_id, social)
        row.handle = social.handle
        rows.append(row)
    return rows


def _conflicts(
    session: Session, org_id: str, values: ContactValues, exclude_id: str | None = None
) -> list[ConflictItem]:
    return repository.find_conflicts(
        session,
        org_id,
        email_key=values.email_key,
        phone=values.phone,
        socials=[(s.platform, s.key) for s in values.social_accounts],
        exclude_id=exclude_id,
    )


def _raise_conflicts(
    session: Session, org_id: str, values: ContactValues, exclude_id: str | None = None
) -> None:
    conflicts = _conflicts(session, org_id, values, exclude_id)
    if conflicts:
        raise _conflict(conflicts)


def _conflict(conflicts: list[ConflictItem]) -> Conflict:
    what = ", ".join(f"{c.field} {c.value}" for c in conflicts)
    return Conflict(
        f"Another contact already has {what}; open it (see conflicts) or change the value.",
        conflicts,
    )


def _insert_or_conflict(
    session: Session, org_id: str, values: ContactValues, contact: ContactRead
) -> None:
    """Insert ``contact``, the unique indexes being the check: no look-up before (one to
    three queries less a create). A refused insert ends the transaction (PostgreSQL ends
    it anyway), and the taken identities are looked up in a new one."""
    row = {
        "id": contact.id,
        "organization_id": org_id,
        "name": contact.name,
        "email": contact.email,
        "email_key": values.email_key,
        "phone": contact.phone,
        "channel": contact.channel,
        "address": contact.address,
        "custom_fields": contact.custom_fields,
        "source": contact.source,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }
    socials = [
        {
            "id": new_id(),
            "organization_id": org_id,
            "contact_id": contact.id,
            "platform": s.platform,
            "handle": s.handle,
            "handle_key": s.key,
        }
        for s in values.social_accounts
    ]
    try:
        repository.insert_new(session, row, socials)
    except IntegrityError:
        session.rollback()
        conflicts = _conflicts(session, org_id, values)
        if not conflicts:
            raise
        raise _conflict(conflicts) from None


def _flush_or_conflict(
    session: Session, org_id: str, values: ContactValues, contact: Contact
) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        conflicts = _conflicts(session, org_id, values, exclude_id=contact.id)
        if not conflicts:
            raise
        raise _conflict(conflicts) from None


def _encode_cursor(contact_id: str) -> str:
    return base64.urlsafe_b64encode(contact_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode("ascii")
        if not _ID.match(decoded):
            raise ValueError(decoded)
        return decoded
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "The cursor is not valid; use the next_cursor of the previous page.",
            [FieldError("cursor", "invalid cursor")],
        ) from None
