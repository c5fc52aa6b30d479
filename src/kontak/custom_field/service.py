"""Defining custom fields, and handing their specs to validation."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kontak.contact.normalize import clean_text
from kontak.custom_field import repository
from kontak.custom_field.schemas import CustomFieldCreate, CustomFieldRead
from kontak.custom_field.values import FIELD_TYPES, FieldSpec
from kontak.db.models import CustomField, Organization
from kontak.errors import Conflict, FieldError, InvalidInput
from kontak.files.headers import BUILTIN_HEADERS, header_key

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_OPTIONS = 200

# The specs of each (organization, custom_fields_version) this process has read. A
# version's specs never change (each change makes a new version, in its transaction), so
# an entry is never wrong, only unused once a newer version exists.
_KEPT: dict[tuple[str, int], tuple[FieldSpec, ...]] = {}
KEEP_AT_MOST = 1_000


def list_fields(session: Session, org: Organization) -> list[CustomFieldRead]:
    """The organization's custom fields, in form and template order."""
    return [CustomFieldRead.model_validate(f) for f in repository.list_fields(session, org.id)]


def specs(session: Session, org_id: str) -> list[FieldSpec]:
    """What contact validation needs of each custom field, read now."""
    return [
        FieldSpec(row.key, row.label, row.type, row.required, tuple(row.options))
        for row in repository.list_specs(session, org_id)
    ]


def kept_specs(session: Session, org: Organization) -> list[FieldSpec]:
    """:func:`specs` of the organization's ``custom_fields_version`` as ``org`` holds it
    (the sign-in read it), read once per version by this process: every create and update
    of a contact asks, and the read was a round trip on PostgreSQL (docs/benchmarks.md,
    session 18). A field changed after ``org`` was read may be missed, as it may be when
    it changes while a contact is written after reading the specs."""
    kept = _KEPT.get((org.id, org.custom_fields_version))
    if kept is None:
        # The version first: were a change committed between the two statements, newer
        # specs would be kept under the older version (harmless), never the reverse.
        version = repository.fields_version(session, org.id)
        kept = tuple(specs(session, org.id))
        if len(_KEPT) >= KEEP_AT_MOST:
            _KEPT.clear()
        _KEPT[(org.id, version)] = kept
    return list(kept)


def create_field(session: Session, org: Organization, data: CustomFieldCreate) -> CustomFieldRead:
    """Define a custom field; its key becomes a template column, so it must not clash."""
    errors = _check(data)
    if errors:
        raise InvalidInput("The custom field is not valid; see errors.", errors)
    if repository.get_by_key(session, org.id, data.key) is not None:
        raise Conflict(f"A custom field with key '{data.key}' already exists.")
    clash = next(
        (
            f.key
            for f in repository.list_fields(session, org.id)
            if header_key(f.key) == header_key(data.key)
        ),
        None,
    )
    if clash:
        raise Conflict(
            f"Key '{data.key}' reads as the same spreadsheet column as '{clash}'; choose another."
        )
    field = CustomField(
        organization_id=org.id,
        key=data.key,
        label=clean_text(data.label or "") or data.key.replace("_", " ").capitalize(),
        type=data.type,
        required=data.required,
        options=[clean_text(o) for o in data.options] if data.type == "select" else [],
        position=repository.next_position(session, org.id),
    )
    try:
        with session.begin_nested():
            repository.add(session, field)
    except IntegrityError:
        raise Conflict(f"A custom field with key '{data.key}' already exists.") from None
    repository.count_change(session, org.id)
    return CustomFieldRead.model_validate(field)


def _check(data: CustomFieldCreate) -> list[FieldError]:
    errors: list[FieldError] = []
    if not _KEY.match(data.key):
        errors.append(
            FieldError(
                "key",
                f"'{data.key}' is not a valid key: use snake_case (lower-case letters, digits "
                "and _, starting with a letter), like 'member_since'.",
            )
        )
    elif header_key(data.key) in BUILTIN_HEADERS:
        column = BUILTIN_HEADERS[header_key(data.key)]
        errors.append(
            FieldError("key", f"'{data.key}' is taken by the built-in column '{column}'.")
        )
    if data.label is not None and len(clean_text(data.label)) > 200:
        errors.append(FieldError("label", "The label is longer than 200 characters."))
    if data.type not in FIELD_TYPES:
        errors.append(
            FieldError("type", f"'{data.type}' is not a type; use one of {', '.join(FIELD_TYPES)}.")
        )
    options = [clean_text(o) for o in data.options]
    if data.type == "select":
        if not options or any(not o for o in options):
            errors.append(
                FieldError("options", "A select field needs a list of non-empty options.")
            )
        elif len({o.lower() for o in options}) != len(options):
            errors.append(FieldError("options", "Options must differ (letter case is ignored)."))
        elif len(options) > MAX_OPTIONS:
            errors.append(
                FieldError("options", f"A select field takes at most {MAX_OPTIONS} options.")
            )
    elif options:
        errors.append(FieldError("options", "Only select fields take options."))
    return errors
