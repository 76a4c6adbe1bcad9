"""Subscribers, their explicit interests, their interaction events and suppressions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import EventRow, InterestRow, PaperRow, SuppressionRow, UserRow

INTEREST_KINDS = ("keyword", "author", "category", "text")
# Event kinds and the sign they give the user's content profile.
EVENT_WEIGHTS = {"click": 1.0, "more": 2.0, "seed": 2.0, "less": -2.0}
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class SubscriberError(ValueError):
    """Invalid subscriber input; ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Interest:
    kind: str
    value: str


def normalise_email(email: str) -> str:
    """Lower-case and validate an address; raise ``SubscriberError`` naming the field."""
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise SubscriberError("email", f"{email!r} is not an e-mail address")
    return cleaned


def create_user(
    session: Session,
    email: str,
    now: datetime,
    *,
    name: str | None = None,
    interests: Sequence[Interest] = (),
    timezone: str = "UTC",
    digest_size: int = 10,
) -> UserRow:
    """Create an active subscriber whose first digest is due now."""
    address = normalise_email(email)
    _check_timezone(timezone)
    if session.scalar(select(UserRow.id).where(UserRow.email == address)) is not None:
        raise SubscriberError("email", f"{address} is already subscribed")
    user = UserRow(
        email=address,
        name=name,
        timezone=timezone,
        digest_size=digest_size,
        status="active",
        next_digest_at=now,
        created_at=now,
        confirmed_at=now,  # operator-created subscribers need no opt-in e-mail
    )
    user.interests = [_interest_row(i) for i in interests]
    session.add(user)
    session.flush()
    return user


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SubscriberError("timezone", f"unknown time zone {name!r}") from exc


def _interest_row(interest: Interest) -> InterestRow:
    if interest.kind not in INTEREST_KINDS:
        raise SubscriberError("interests.kind", f"must be one of {', '.join(INTEREST_KINDS)}")
    value = interest.value.strip()
    if not value:
        raise SubscriberError("interests.value", "must not be empty")
    return InterestRow(kind=interest.kind, value=value)


def record_event(
    session: Session,
    user_id: int,
    paper_id: int,
    kind: str,
    now: datetime,
    *,
    digest_id: int | None = None,
) -> EventRow:
    """Store one interaction; it changes the user's next digest without retraining."""
    if kind not in EVENT_WEIGHTS:
        raise SubscriberError("kind", f"must be one of {', '.join(EVENT_WEIGHTS)}")
    if session.get(UserRow, user_id) is None:
        raise SubscriberError("user_id", f"no user {user_id}")
    if session.get(PaperRow, paper_id) is None:
        raise SubscriberError("paper_id", f"no paper {paper_id}")
    event = EventRow(
        user_id=user_id, paper_id=paper_id, kind=kind, digest_id=digest_id, created_at=now
    )
    session.add(event)
    session.flush()
    return event


def unsubscribe(session: Session, user_id: int, now: datetime) -> bool:
    """Unsubscribe and suppress the address. Idempotent; True when it changed anything."""
    user = session.get(UserRow, user_id)
    if user is None or user.status == "unsubscribed":
        return False
    user.status = "unsubscribed"
    user.unsubscribed_at = now
    user.next_digest_at = None
    suppress(session, user.email, "unsubscribe", now)
    return True


def suppress(session: Session, email: str, reason: str, now: datetime) -> None:
    """Never send to ``email`` again (unsubscribe, bounce, spam report)."""
    exists = session.scalar(select(SuppressionRow.id).where(SuppressionRow.email == email))
    if exists is None:
        session.add(SuppressionRow(email=email, reason=reason, created_at=now))
        session.flush()


def is_suppressed(session: Session, email: str) -> bool:
    return (
        session.scalar(select(SuppressionRow.id).where(SuppressionRow.email == email)) is not None
    )
