"""Creating organizations, users and tokens, and telling who a request acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from kontak.account import repository
from kontak.account.roles import Role
from kontak.account.secrets import (
    generate_password,
    generate_token,
    hash_password,
    hash_token,
    verify_password,
)
from kontak.contact.normalize import InvalidValue, normalize_email
from kontak.db.models import ApiToken, Organization, User
from kontak.errors import Conflict, FieldError, InvalidInput, NotFound, Unauthorized

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MIN_PASSWORD = 8


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request or command acts as."""

    user: User
    organization: Organization

    @property
    def role(self) -> str:
        return self.user.role


def get_or_create_organization(
    session: Session, slug: str, *, region: str = "ID", name: str | None = None
) -> tuple[Organization, bool]:
    """The organization with ``slug``; created (with ``region``) if it does not exist."""
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"'{slug}' is not a valid organization slug: use lower-case letters, digits and "
            "hyphens, like 'acme-support'.",
            [FieldError("org", "invalid slug")],
        )
    org = repository.get_organization_by_slug(session, slug)
    if org is not None:
        return org, False
    org = Organization(slug=slug, name=name or slug, default_region=region.upper())
    repository.add(session, org)
    return org, True


def get_organization(session: Session, slug: str) -> Organization:
    org = repository.get_organization_by_slug(session, slug)
    if org is None:
        raise NotFound(f"No organization '{slug}'; create it with `kontak user create`.")
    return org


def create_user(
    session: Session,
    *,
    email: str,
    org_slug: str,
    role: str,
    password: str | None = None,
    name: str | None = None,
    region: str = "ID",
) -> tuple[User, str | None]:
    """Create a user (and the organization if new); returns the generated password if any."""
    try:
        normalized = normalize_email(email)
    except InvalidValue as exc:
        raise InvalidInput(str(exc), [FieldError("email", str(exc))]) from None
    if normalized is None:
        raise InvalidInput("Give the user's email.", [FieldError("email", "required")])
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"'{role}' is not a role; use admin, supervisor or agent.")
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD} characters.")
    user_email = normalized[1]
    if repository.get_user_by_email(session, user_email) is not None:
        raise Conflict(f"A user with email {user_email} already exists.")
    org, _ = get_or_create_organization(session, org_slug, region=region)
    generated = None if password is not None else generate_password()
    user = User(
        organization_id=org.id,
        email=user_email,
        name=(name or user_email.split("@")[0]).strip(),
        password_hash=hash_password(password if password is not None else str(generated)),
        role=role,
    )
    repository.add(session, user)
    return user, generated


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD} characters.")
    user.password_hash = hash_password(password)
    session.flush()


def get_user_by_email(session: Session, email: str) -> User:
    user = repository.get_user_by_email(session, email.strip().lower())
    if user is None:
        raise NotFound(f"No user with email {email}; create one with `kontak user create`.")
    return user


def create_token(session: Session, user: User, *, name: str = "api") -> tuple[ApiToken, str]:
    """A new API token for ``user``; the raw token is returned once and never stored."""
    raw = generate_token()
    token = ApiToken(
        organization_id=user.organization_id,
        user_id=user.id,
        name=name.strip()[:100] or "api",
        token_hash=hash_token(raw),
        prefix=raw[:12],
    )
    repository.add(session, token)
    return token, raw


def authenticate_token(engine: Engine, raw: str) -> Principal:
    """The principal of an API token: one query (``kontak.db.session.single_read``)."""
    owner = repository.get_token_owner(engine, hash_token(raw.strip()))
    if owner is None:
        # Deleting a user or organization deletes its tokens (ON DELETE CASCADE).
        raise Unauthorized(
            "The API token is unknown or revoked; create one with `kontak token create EMAIL`."
        )
    user, org = owner
    return Principal(user=user, organization=org)


def principal_for_user(session: Session, user_id: str) -> Principal:
    """The principal of a signed-in user (from a web session)."""
    user = repository.get_user(session, user_id)
    org = repository.get_organization(session, user.organization_id) if user else None
    if user is None or org is None:
        raise Unauthorized("Your session has ended; sign in again.")
    return Principal(user=user, organization=org)


def authenticate_password(session: Session, email: str, password: str) -> Principal:
    user = repository.get_user_by_email(session, email.strip().lower())
    if user is None or not verify_password(user.password_hash, password):
        raise Unauthorized("Wrong email or password.")
    org = repository.get_organization(session, user.organization_id)
    if org is None:
        raise Unauthorized("The user's organization no longer exists.")
    return Principal(user=user, organization=org)


def list_members(session: Session, org: Organization) -> list[User]:
    return repository.list_users(session, org.id)


def list_tokens(session: Session, org: Organization) -> list[tuple[ApiToken, str]]:
    return repository.list_tokens(session, org.id)


def set_locale(session: Session, user: User, locale: str) -> None:
    user.locale = locale
    session.flush()
