"""The exceptions Kontak raises on purpose; the web and CLI layers map each class once.

KontakError
├── NotFound          (404; exit 2)
├── Conflict          (409; exit 1)  carries ``conflicts``
├── InvalidInput      (422; exit 2)  carries ``errors``
├── Unauthorized      (401)
└── Forbidden         (403)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: ``field`` is a dotted path such as ``social_accounts.0.handle``."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ConflictItem:
    """A value that already belongs to another contact of the organization."""

    field: str
    value: str
    contact_id: str


class KontakError(Exception):
    """Base of every error a user can cause; ``title`` is short, ``detail`` says what to do."""

    title = "Error"
    slug = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(KontakError):
    title = "Not found"
    slug = "not-found"


class Unauthorized(KontakError):
    title = "Unauthorized"
    slug = "unauthorized"


class PayloadTooLarge(KontakError):
    title = "Payload too large"
    slug = "too-large"


class Forbidden(KontakError):
    title = "Forbidden"
    slug = "forbidden"


class InvalidInput(KontakError):
    title = "Invalid input"
    slug = "validation-error"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = list(errors or [])


class Conflict(KontakError):
    title = "Conflict"
    slug = "conflict"

    def __init__(self, detail: str, conflicts: list[ConflictItem] | None = None) -> None:
        super().__init__(detail)
        self.conflicts = list(conflicts or [])
