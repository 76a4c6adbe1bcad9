"""Sign-up rate limits, counted by the maintained ``limits`` package.

Two limits stop the sign-up form being used as a mail cannon: one on how many sign-ups one
client address may post (answered 429), one on how many confirmation e-mails one address
may be sent (over it, the sign-up is answered as usual and no e-mail goes out, so the
answer says nothing about the address). Counts live in memory, or in Redis when
``PAPERBOY_RATE_LIMIT_URL`` names one, so that every server process shares them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.pages import PageError
from recsys.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on and, if not, how many seconds until it may."""

    allowed: bool
    retry_after_s: int = 0


class SignUpLimits:
    """The per-client and per-address sign-up limits of one app."""

    def __init__(self, settings: Settings) -> None:
        # A moving window: a fixed one lets twice the limit through around its boundary.
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(settings.rate_limit_url or "memory://")
        )
        self.per_ip: RateLimitItem = parse(settings.signup_limit_per_ip)
        self.per_address: RateLimitItem = parse(settings.signup_limit_per_address)

    def client(self, ip: str, form: str = "signup") -> Verdict:
        """Count one post of ``form`` from ``ip``; refused once over the per-client limit."""
        return self._hit(self.per_ip, f"{form}-ip", ip)

    def confirmation(self, address: str) -> Verdict:
        """Count one confirmation e-mail to ``address`` (normalised); refused when over."""
        # Hashed: the limiter's store (perhaps a shared Redis) need not hold addresses.
        return self._hit(self.per_address, "confirm-address", _digest(address))

    def preferences_link(self, address: str) -> Verdict:
        """Count one preferences-link e-mail to ``address``; refused when over the limit."""
        return self._hit(self.per_address, "link-address", _digest(address))

    def _hit(self, item: RateLimitItem, *key: str) -> Verdict:
        try:
            if self._limiter.hit(item, *key):
                return Verdict(True)
            reset = self._limiter.get_window_stats(item, *key).reset_time
        except Exception:  # any storage failure (Redis down): sign-up stays open, and says so
            log.exception("rate-limit storage failed; letting the request through")
            return Verdict(True)
        return Verdict(False, max(1, math.ceil(reset - time.time())))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def client_ip(request: Request) -> str:
    """The client's address as the server saw it (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client is not None else "unknown"


TOO_MANY = "Too many requests from your network; please try again later."


def refuse_busy_client(
    limits: SignUpLimits, request: Request, *, form: str = "signup", page: bool
) -> None:
    """Count this post of ``form``; over the per-client limit, a 429 (a page or JSON)."""
    verdict = limits.client(client_ip(request), form)
    if verdict.allowed:
        return
    headers = {"Retry-After": str(verdict.retry_after_s)}
    if page:
        raise PageError(
            status.HTTP_429_TOO_MANY_REQUESTS, "Too many requests", TOO_MANY, headers=headers
        )
    raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, TOO_MANY, headers=headers)


def get_signup_limits(request: Request) -> SignUpLimits:
    limits: SignUpLimits = request.app.state.signup_limits
    return limits


SignUpLimitsDep = Annotated[SignUpLimits, Depends(get_signup_limits)]
