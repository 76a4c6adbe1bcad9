"""The operator's /admin session: a signed cookie after a login form, and CSRF tokens.

The admin key is typed into a form once, compared in constant time, and never put in a URL
(where it would reach the access log, the browser history and Referer headers). The cookie
is a token of :mod:`recsys.subscribers.links` for the ``admin`` purpose: signed with
``SECRET_KEY`` (so rotating it, or ``PREVIOUS_SECRET_KEYS`` running out, logs everyone out),
expiring after ``SESSION_HOURS``, and naming a digest of the admin key, so changing the key
ends every session made with the old one. Each state-changing form carries a CSRF token
derived from the session's random id: a page on another site can neither read it nor make
one, and a token from one session is worthless in another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from recsys.settings import Settings
from recsys.subscribers.links import Keyring, TokenError, make_token, read_token

COOKIE = "paperboy_admin"
PURPOSE = "admin"
SESSION_HOURS = 8  # a working day; then the key is asked for again


@dataclass(frozen=True)
class AdminSession:
    """A logged-in operator's session: its random id and when it ends."""

    sid: str
    expires_at: datetime


def key_matches(settings: Settings, typed: str) -> bool:
    """Whether ``typed`` is the configured admin key, compared in constant time."""
    if not settings.admin_api_key:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a form may hold any character.
    return hmac.compare_digest(typed.encode(), settings.admin_api_key.encode())


def _key_digest(settings: Settings) -> str:
    key = (settings.admin_api_key or "").encode()
    return hashlib.sha256(b"paperboy-admin-key:" + key).hexdigest()[:16]


def start_session(settings: Settings, now: datetime) -> tuple[AdminSession, str]:
    """A new session and its signed cookie value."""
    session = AdminSession(secrets.token_urlsafe(16), now + timedelta(hours=SESSION_HOURS))
    data = {"s": session.sid, "a": _key_digest(settings)}
    return session, make_token(Keyring.from_settings(settings), PURPOSE, data, session.expires_at)


def read_session(settings: Settings, cookie: str | None, now: datetime) -> AdminSession | None:
    """The session a cookie proves, or None when absent, tampered with, expired or stale."""
    if not cookie or not settings.admin_api_key:
        return None
    try:
        data = read_token(Keyring.from_settings(settings), cookie, PURPOSE, now)
    except TokenError:
        return None
    sid, key = data.get("s"), data.get("a")
    if not isinstance(sid, str) or not isinstance(key, str):
        return None
    if not hmac.compare_digest(key, _key_digest(settings)):
        return None  # made with an admin key that has since been changed
    return AdminSession(sid, now)


def csrf_token(settings: Settings, session: AdminSession) -> str:
    """The CSRF token of ``session``'s forms."""
    mac = hmac.digest(
        settings.secret_key.encode(), b"paperboy-admin-csrf:" + session.sid.encode(), "sha256"
    )
    return mac.hex()


def csrf_valid(settings: Settings, session: AdminSession, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(
        token.encode(), csrf_token(settings, session).encode()
    )


def set_cookie(
    response: Response, request: Request, value: str, session: AdminSession, settings: Settings
) -> None:
    """Put the session cookie on ``response``: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_HOURS * 3600,
        expires=session.expires_at,
        path="/admin",
        httponly=True,
        secure=_https(request, settings),
        samesite="strict",
    )


def _https(request: Request, settings: Settings) -> bool:
    # Behind a TLS-terminating proxy the request may look like http; the public URL says.
    return request.url.scheme == "https" or settings.public_base_url.startswith("https:")


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path="/admin",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
