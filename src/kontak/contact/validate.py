"""Checks a whole contact (all fields at once) and gathers every problem as a FieldError.

The API, the web form and the import call :func:`validate_contact`; rules that span
fields (a contact needs a way to reach it) live in :func:`check_reachable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kontak.contact.normalize import (
    InvalidValue,
    normalize_address,
    normalize_channel,
    normalize_email,
    normalize_handle,
    normalize_name,
    normalize_phone,
    normalize_platform,
    normalize_tag,
    split_tags,
)
from kontak.custom_field.values import FieldSpec, coerce
from kontak.errors import FieldError
from kontak.messages import Text

CONTACT_FIELDS = (
    "name",
    "email",
    "phone",
    "channel",
    "address",
    "social_accounts",
    "tags",
    "custom_fields",
)


@dataclass(frozen=True, slots=True)
class Social:
    platform: str
    handle: str

    @property
    def key(self) -> str:
        return self.handle.lower()


@dataclass(slots=True)
class ContactValues:
    """A contact's normalized values; ``email_key`` is the case-folded comparison key."""

    name: str = ""
    email: str | None = None
    email_key: str | None = None
    phone: str | None = None
    channel: str | None = None
    address: str | None = None
    social_accounts: list[Social] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)


def validate_contact(
    raw: Mapping[str, Any],
    *,
    region: str,
    fields: Sequence[FieldSpec],
    partial: bool = False,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Normalize the fields present in ``raw``; returns (values by field, errors).

    With ``partial`` (PATCH) absent fields are left out and required custom fields are only
    checked when they are being emptied; otherwise absent fields count as empty.
    """
    values: dict[str, Any] = {}
    errors: list[FieldError] = []

    def run(name: str, fn: Any, *args: Any) -> None:
        try:
            values[name] = fn(*args)
        except InvalidValue as exc:
            errors.append(FieldError(name, exc.text))

    if not partial or "name" in raw:
        run("name", normalize_name, raw.get("name"))
    if not partial or "email" in raw:
        try:
            email = normalize_email(raw.get("email"))
            values["email"], values["email_key"] = email if email else (None, None)
        except InvalidValue as exc:
            errors.append(FieldError("email", exc.text))
    if not partial or "phone" in raw:
        run("phone", normalize_phone, raw.get("phone"), region)
    if not partial or "channel" in raw:
        run("channel", normalize_channel, raw.get("channel"))
    if not partial or "address" in raw:
        run("address", normalize_address, raw.get("address"))
    if not partial or "social_accounts" in raw:
        values["social_accounts"] = _socials(raw.get("social_accounts") or [], errors)
    if not partial or "tags" in raw:
        values["tags"] = _tags(raw.get("tags"), errors)
    if not partial or "custom_fields" in raw:
        values["custom_fields"] = _custom(
            raw.get("custom_fields") or {}, fields, errors, partial=partial
        )
    return values, errors


def check_reachable(contact: ContactValues) -> list[FieldError]:
    if contact.phone or contact.email or contact.social_accounts:
        return []
    return [FieldError("phone", Text("contact.unreachable"))]


def _socials(items: Any, errors: list[FieldError]) -> list[Social]:
    result: list[Social] = []
    if not isinstance(items, list):
        errors.append(FieldError("social_accounts", Text("social.list")))
        return result
    for i, item in enumerate(items):
        where = f"social_accounts.{i}"
        if not isinstance(item, Mapping):
            errors.append(FieldError(where, Text("social.item")))
            continue
        try:
            platform = normalize_platform(item.get("platform"))
        except InvalidValue as exc:
            errors.append(FieldError(f"{where}.platform", exc.text))
            continue
        try:
            handle = normalize_handle(platform, item.get("handle"))
        except InvalidValue as exc:
            errors.append(FieldError(f"{where}.handle", exc.text))
            continue
        if handle is None:
            errors.append(FieldError(f"{where}.handle", Text("handle.missing", platform=platform)))
            continue
        social = Social(platform, handle)
        if all((s.platform, s.key) != (platform, social.key) for s in result):
            result.append(social)
    return result


def _tags(raw: Any, errors: list[FieldError]) -> list[str]:
    try:
        if raw is None:
            return []
        if isinstance(raw, str):
            return split_tags(raw)
        tags: list[str] = []
        for item in raw:
            tag = normalize_tag(item)
            if tag and tag not in tags:
                tags.append(tag)
        return tags
    except InvalidValue as exc:
        errors.append(FieldError("tags", exc.text))
        return []


def _custom(
    raw: Any, fields: Sequence[FieldSpec], errors: list[FieldError], *, partial: bool
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        errors.append(FieldError("custom_fields", Text("custom.object")))
        return {}
    specs = {spec.key: spec for spec in fields}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:
            known = ", ".join(specs) or "-"
            errors.append(
                FieldError(f"custom_fields.{key}", Text("custom.unknown", key=key, known=known))
            )
            continue
        try:
            result[key] = coerce(spec, value)
        except InvalidValue as exc:
            errors.append(FieldError(f"custom_fields.{key}", exc.text))
    for spec in fields:
        missing = result.get(spec.key) is None
        asked = spec.key in raw or not partial
        if (
            spec.required
            and missing
            and asked
            and f"custom_fields.{spec.key}" not in {e.field for e in errors}
        ):
            errors.append(
                FieldError(f"custom_fields.{spec.key}", Text("custom.required", label=spec.label))
            )
    return result
