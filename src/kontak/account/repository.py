"""SQL for organizations, users and tokens."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import manager_of_class

from kontak.db.models import ApiToken, Organization, User
from kontak.db.session import single_read

M = TypeVar("M", User, Organization)


def get_organization_by_slug(session: Session, slug: str) -> Organization | None:
    return session.scalars(select(Organization).where(Organization.slug == slug)).one_or_none()


def get_organization(session: Session, organization_id: str) -> Organization | None:
    return session.get(Organization, organization_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_token_owner(engine: Engine, token_hash: str) -> tuple[User, Organization] | None:
    """The user and organization of the token with ``token_hash``, in one statement on the
    driver's cursor (every API request asks; ``single_read``), as detached objects built
    without the ORM's loading or constructors: each cost more than the query
    (docs/benchmarks.md, sessions 16 and 34)."""
    query = _token_owner(engine.dialect)
    with single_read(engine) as cursor:
        cursor.execute(query.sql, (token_hash,) if query.positional else {"token_hash": token_hash})
        row = cursor.fetchone()
    if row is None:
        return None
    row = tuple(row)
    owner = _OWNERS.get(row)
    if owner is None:
        values = [
            value if process is None else process(value)
            for process, value in zip(query.processors, row, strict=True)
        ]
        split = len(query.user_keys)
        owner = (
            _detached(User, query.user_keys, values[:split]),
            _detached(Organization, query.org_keys, values[split:]),
        )
        if len(_OWNERS) >= OWNERS_KEPT:
            _OWNERS.clear()
        _OWNERS[row] = owner
    return owner


# The user and organization last made from each row of the sign-in's statement, reused
# while the row (every column of both) stays the same: making them cost ~4% of a create's
# CPU (docs/benchmarks.md, session 35). Any change to either, its role, its password, the
# organization's custom fields' version, gives another row. The objects are detached and
# read only: no request changes them (kontak.web.deps.transaction), so threads share them.
OWNERS_KEPT = 1024
_OWNERS: dict[tuple[Any, ...], tuple[User, Organization]] = {}


@dataclass(frozen=True, slots=True)
class _TokenOwnerQuery:
    """The select of a token's user and organization, compiled for one database."""

    sql: str
    positional: bool  # the driver's parameters: (hash,) or {"token_hash": hash}
    processors: tuple[Callable[[Any], Any] | None, ...]  # per column: a stored value's type
    user_keys: tuple[str, ...]
    org_keys: tuple[str, ...]


@functools.cache
def _token_owner(dialect: Dialect) -> _TokenOwnerQuery:
    """Composed and compiled once per database kind (composing cost more than running)."""
    users = tuple(sa_inspect(User).column_attrs)
    orgs = tuple(sa_inspect(Organization).column_attrs)
    statement = (
        select(*(a.columns[0] for a in users), *(a.columns[0] for a in orgs))
        .select_from(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .join(Organization, Organization.id == ApiToken.organization_id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )
    compiled = statement.compile(dialect=dialect)
    return _TokenOwnerQuery(
        sql=compiled.string,
        positional=compiled.positional,
        processors=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ),
        user_keys=tuple(a.key for a in users),
        org_keys=tuple(a.key for a in orgs),
    )


def _detached(model: type[M], keys: tuple[str, ...], values: list[Any]) -> M:
    """An instance of ``model`` with every column set, as if loaded by a session that has
    since closed: made as the ORM's loading makes one (no ``__init__``, no attribute
    events), then marked detached."""
    obj: M = manager_of_class(model).new_instance()
    instance_state(obj).dict.update(zip(keys, values, strict=True))
    make_transient_to_detached(obj)
    return obj


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
