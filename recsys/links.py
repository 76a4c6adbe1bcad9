"""Signed tokens for the links in an e-mail: click, more/less like this, unsubscribe.

A token is ``base64url(payload).base64url(hmac_sha256(payload))``; the payload carries a
key id, the purpose, an expiry and a small data dict. The purpose is checked so a click
token can never be replayed as an unsubscribe, and the expiry so old mail stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

KEY_ID = "k1"
PURPOSES = frozenset({"click", "more", "less", "unsubscribe"})


class TokenError(ValueError):
    """A token that is malformed, tampered with, expired or meant for something else."""


def make_token(secret: str, purpose: str, data: dict[str, Any], expires_at: datetime) -> str:
    """Sign ``data`` for ``purpose`` until ``expires_at``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    payload = {"k": KEY_ID, "p": purpose, "e": int(expires_at.timestamp()), "d": data}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(_mac(secret, body))}"


def read_token(secret: str, token: str, purpose: str, now: datetime) -> dict[str, Any]:
    """Return the token's data, or raise ``TokenError`` saying what is wrong with it."""
    body, _, sig = token.partition(".")
    if not body or not sig:
        raise TokenError("malformed link token")
    if not hmac.compare_digest(_unb64(sig), _mac(secret, body)):
        raise TokenError("link signature does not match (tampered or from another server)")
    payload = json.loads(_unb64(body))
    if payload.get("p") != purpose:
        raise TokenError(f"this link is for {payload.get('p')!r}, not {purpose!r}")
    if payload.get("e", 0) < now.timestamp():
        raise TokenError("this link has expired")
    data: dict[str, Any] = payload.get("d", {})
    return data


def _mac(secret: str, body: str) -> bytes:
    return hmac.new(secret.encode(), f"{KEY_ID}.{body}".encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed link token") from exc


class LinkMaker:
    """Builds the signed URLs that go into a digest e-mail."""

    def __init__(self, secret: str, base_url: str, expires_at: datetime) -> None:
        self._secret = secret
        self._base = base_url.rstrip("/")
        self._expires_at = expires_at

    def _url(self, route: str, purpose: str, data: dict[str, Any]) -> str:
        return f"{self._base}/{route}/{make_token(self._secret, purpose, data, self._expires_at)}"

    def click(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._url("c", "click", {"u": user_id, "p": paper_id, "d": digest_id})

    def more(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._url("more", "more", {"u": user_id, "p": paper_id, "d": digest_id})

    def less(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._url("less", "less", {"u": user_id, "p": paper_id, "d": digest_id})

    def unsubscribe(self, user_id: int) -> str:
        return self._url("unsubscribe", "unsubscribe", {"u": user_id})
