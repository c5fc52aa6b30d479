"""Signed-cookie sessions for the web pages (stateless: any web process can read them).

The cookie holds the user id and a CSRF token, signed with the secret key; it is HttpOnly,
SameSite=Lax, and Secure when the request came over https.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from kontak.config import Settings

COOKIE = "kontak_session"
LOCALE_COOKIE = "kontak_locale"
MAX_AGE_S = 14 * 24 * 3600


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: str
    csrf: str


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept in the data folder.

    Made whole before it appears under its name (written to a file of its own, then linked
    to ``secret_key``, which fails if another process got there first): the processes of
    ``kontak serve --processes N`` start at once, and each used to write a key of its own
    and read back whichever was there, or an empty file another had only just created."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(prefix=".secret_key.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):  # another process's key stands
                os.link(draft, path)
        finally:
            os.unlink(draft)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise RuntimeError(
            f"{path} is empty, so sessions cannot be signed: delete it (a new key is made at"
            " the next start, and everyone signs in again) or set KONTAK_SECRET_KEY."
        )
    return key


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt="kontak-session")


def read(request: Request) -> WebSession | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or "u" not in data or "c" not in data:
        return None
    return WebSession(user_id=str(data["u"]), csrf=str(data["c"]))


def start(request: Request, response: Response, user_id: str) -> None:
    value = _serializer(request).dumps({"u": user_id, "c": secrets.token_urlsafe(24)})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
