"""Signed tokens for every link we send: click, more/less like this, unsubscribe, confirm,
preferences.

A token is ``base64url(payload).base64url(hmac_sha256(payload))``; the payload carries a
key id, the purpose, an expiry and a small data dict. The purpose is checked so a click
token can never be replayed as an unsubscribe, and the expiry so old mail stops working,
except for unsubscribing (:data:`NEVER_EXPIRE`).

The key id names the secret that signed the token. It is derived from the secret itself, so
rotating ``SECRET_KEY`` needs no id bookkeeping: put the old secret in
``PREVIOUS_SECRET_KEYS`` and links already in inboxes keep working until they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from recsys.settings import Settings

# "admin" signs the operator's /admin session cookie, never a link that leaves the server.
PURPOSES = frozenset({"click", "more", "less", "unsubscribe", "confirm", "preferences", "admin"})
# An unsubscribe link can only take someone off the list, so it never expires: a subscriber
# with nothing but old mail must still be able to leave (and mailbox providers keep the
# List-Unsubscribe URL of every message they hold). Its expiry is still signed, and ignored.
NEVER_EXPIRE = frozenset({"unsubscribe"})
# Our tokens are a few hundred characters; refusing long ones early bounds the work an
# attacker can make us do per request.
MAX_TOKEN_CHARS = 2048
_BAD_SIGNATURE = "link signature does not match (tampered, retired key or another server)"


class TokenError(ValueError):
    """A token that is malformed, tampered with, expired or meant for something else."""


@lru_cache(maxsize=16)
def key_id(secret: str) -> str:
    """A short public name for ``secret``; reveals nothing usable about it."""
    return hashlib.sha256(b"paperboy-link-key:" + secret.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """The secret that signs new links, and retired secrets still accepted when reading."""

    current: str
    previous: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        return cls(settings.secret_key, settings.retired_secret_keys)

    def secret_for(self, kid: object) -> str | None:
        """The secret whose key id is ``kid``, or None when it is not (or no longer) ours."""
        for secret in (self.current, *self.previous):
            if hmac.compare_digest(key_id(secret), str(kid)):
                return secret
        return None


Keys = str | Keyring


def _keyring(keys: Keys) -> Keyring:
    return keys if isinstance(keys, Keyring) else Keyring(keys)


def make_token(keys: Keys, purpose: str, data: dict[str, Any], expires_at: datetime) -> str:
    """Sign ``data`` for ``purpose`` until ``expires_at`` with the current secret."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    secret = _keyring(keys).current
    payload = {"k": key_id(secret), "p": purpose, "e": int(expires_at.timestamp()), "d": data}
    return _sign(secret.encode(), json.dumps(payload, separators=(",", ":"), sort_keys=True))


def _sign(secret: bytes, payload_json: str) -> str:
    # Bytes throughout, _b64 written out: a batch signs ~32,000 links through here.
    body = binascii.b2a_base64(payload_json.encode(), newline=False).translate(_URLSAFE)
    body = body.rstrip(b"=")
    mac = binascii.b2a_base64(hmac.digest(secret, body, "sha256"), newline=False)
    return (body + b"." + mac.translate(_URLSAFE).rstrip(b"=")).decode()


def read_token(keys: Keys, token: str, purpose: str, now: datetime) -> dict[str, Any]:
    """Return the token's data, or raise ``TokenError`` saying what is wrong with it."""
    body, _, sig = token.partition(".")
    if not body or not sig or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed link token")
    # The payload is parsed before the signature is checked only to learn the key id;
    # nothing in it is trusted until the MAC matches.
    payload = _payload(body)
    secret = _keyring(keys).secret_for(payload.get("k"))
    if secret is None or not hmac.compare_digest(_unb64(sig), _mac(secret, body)):
        raise TokenError(_BAD_SIGNATURE)
    if payload.get("p") != purpose:
        raise TokenError(f"this link is for {payload.get('p')!r}, not {purpose!r}")
    expiry = payload.get("e")
    if not isinstance(expiry, int):
        raise TokenError("malformed link token")
    if expiry < now.timestamp() and purpose not in NEVER_EXPIRE:
        raise TokenError("this link has expired")
    data = payload.get("d")
    if not isinstance(data, dict):
        raise TokenError("malformed link token")
    return data


def _payload(body: str) -> dict[str, Any]:
    try:
        payload = json.loads(_unb64(body))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # Read before the signature is checked: 1,500 nested "[" fit in a token and must
        # be a bad link, not a 500.
        raise TokenError("malformed link token") from exc
    if not isinstance(payload, dict):
        raise TokenError("malformed link token")
    return payload


def _mac(secret: str, body: str) -> bytes:
    return hmac.digest(secret.encode(), body.encode(), "sha256")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    # base64.urlsafe_b64encode without its wrappers: this runs twice per link signed.
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise TokenError("malformed link token") from exc


def _user_data(user_id: int, created_at: datetime | None) -> dict[str, Any]:
    # The sign-up time pins a link to one account: SQLite may hand a deleted account's id
    # to the next sign-up, and that person must not inherit the old links.
    data: dict[str, Any] = {"u": user_id}
    if created_at is not None:
        data["c"] = int(created_at.timestamp())
    return data


class LinkMaker:
    """Builds the signed URLs that go into our e-mails and pages.

    A 1,000-digest batch signs ~32,000 links, so the key id, secret and expiry are worked
    out once here, and the three per-paper links write their payload JSON directly: the
    same bytes ``make_token`` produces (sorted keys, no spaces), without a dict and
    ``json.dumps`` per link. ``test_links`` checks the two agree.
    """

    def __init__(self, keys: Keys, base_url: str, expires_at: datetime) -> None:
        self._keys = keys
        self._base = base_url.rstrip("/")
        self._expires_at = expires_at
        secret = _keyring(keys).current
        self._secret = secret.encode()
        # The payload after the data dict, identical for every link of one purpose.
        tail = f',"e":{int(expires_at.timestamp())},"k":"{key_id(secret)}","p":'
        self._tails = {purpose: f'{tail}"{purpose}"}}' for purpose in PURPOSES}

    def _url(self, route: str, purpose: str, data: dict[str, Any]) -> str:
        return f"{self._base}/{route}/{make_token(self._keys, purpose, data, self._expires_at)}"

    def _paper_url(self, route: str, purpose: str, user: int, paper: int, digest: int) -> str:
        if type(user) is not int or type(paper) is not int or type(digest) is not int:
            # Only plain ints print as json.dumps prints them (not bools, not numpy ints).
            return self._url(route, purpose, {"u": user, "p": paper, "d": digest})
        data = f'{{"d":{{"d":{digest},"p":{paper},"u":{user}}}'
        return f"{self._base}/{route}/{_sign(self._secret, data + self._tails[purpose])}"

    def click(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._paper_url("c", "click", user_id, paper_id, digest_id)

    def more(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._paper_url("more", "more", user_id, paper_id, digest_id)

    def less(self, user_id: int, paper_id: int, digest_id: int) -> str:
        return self._paper_url("less", "less", user_id, paper_id, digest_id)

    def unsubscribe(self, user_id: int, created_at: datetime | None = None) -> str:
        return self._url("unsubscribe", "unsubscribe", _user_data(user_id, created_at))

    def confirm(self, user_id: int, created_at: datetime | None = None) -> str:
        return self._url("confirm", "confirm", _user_data(user_id, created_at))

    def preferences(self, user_id: int, created_at: datetime | None = None) -> str:
        return self._url("preferences", "preferences", _user_data(user_id, created_at))
