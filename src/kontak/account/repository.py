"""SQL for organizations, users and tokens."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, make_transient_to_detached

from kontak.db.models import ApiToken, Organization, User


def get_organization_by_slug(session: Session, slug: str) -> Organization | None:
    return session.scalars(select(Organization).where(Organization.slug == slug)).one_or_none()


def get_organization(session: Session, organization_id: str) -> Organization | None:
    return session.get(Organization, organization_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_token_owner(connection: Connection, token_hash: str) -> tuple[User, Organization] | None:
    """The user and organization of the token with ``token_hash``, in one Core statement
    (every API request asks), as detached objects: the ORM's loading cost more than the
    query (docs/benchmarks.md, session 16)."""
    user_columns, org_columns, statement = _token_owner()
    row = connection.execute(statement, {"token_hash": token_hash}).one_or_none()
    if row is None:
        return None
    user = User(**{key: row[i] for i, key in enumerate(user_columns)})
    org = Organization(**{key: row[len(user_columns) + i] for i, key in enumerate(org_columns)})
    # As if loaded by a session that has since closed (every column is set).
    make_transient_to_detached(user)
    make_transient_to_detached(org)
    return user, org


@functools.cache
def _token_owner() -> tuple[tuple[str, ...], tuple[str, ...], Select[Any]]:
    """The attribute names of the user's and the organization's columns, and the select of
    both by token hash; composed once (composing it cost more than running it)."""
    users = tuple(sa_inspect(User).column_attrs)
    orgs = tuple(sa_inspect(Organization).column_attrs)
    statement = (
        select(*(a.columns[0] for a in users), *(a.columns[0] for a in orgs))
        .select_from(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .join(Organization, Organization.id == ApiToken.organization_id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )
    return tuple(a.key for a in users), tuple(a.key for a in orgs), statement


def add(session: Session, obj: Organization | User | ApiToken) -> None:
    session.add(obj)
    session.flush()


def list_users(session: Session, organization_id: str) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.organization_id == organization_id).order_by(User.email)
        )
    )


def list_tokens(session: Session, organization_id: str) -> list[tuple[ApiToken, str]]:
    """Tokens of the organization with their user's email."""
    rows = session.execute(
        select(ApiToken, User.email)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.organization_id == organization_id)
        .order_by(ApiToken.created_at.desc())
    )
    return [(token, email) for token, email in rows]
