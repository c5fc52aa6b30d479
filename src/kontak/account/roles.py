"""Roles and what each may do (SPEC §2); the one place permissions are decided."""

from __future__ import annotations

from enum import StrEnum

from kontak.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


class Permission(StrEnum):
    CONTACT_READ = "contact:read"
    CONTACT_WRITE = "contact:write"
    CONTACT_DELETE = "contact:delete"
    TAG_WRITE = "tag:write"
    IMPORT = "import"
    EXPORT = "export"
    CUSTOM_FIELD_WRITE = "custom_field:write"
    MEMBER_ADMIN = "member:admin"
    TOKEN_ADMIN = "token:admin"


_AGENT = {Permission.CONTACT_READ, Permission.CONTACT_WRITE}
_SUPERVISOR = _AGENT | {
    Permission.CONTACT_DELETE,
    Permission.TAG_WRITE,
    Permission.IMPORT,
    Permission.EXPORT,
}
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset(_AGENT),
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: str, permission: Permission) -> bool:
    return permission in GRANTS.get(Role(role), frozenset())


def require(role: str, permission: Permission) -> None:
    """Raise Forbidden unless ``role`` grants ``permission``."""
    if not allows(role, permission):
        raise Forbidden(
            f"Your role ({role}) may not do this ({permission.value}); ask an admin of your "
            "organization."
        )
