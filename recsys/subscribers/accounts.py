"""Subscribers, their explicit interests, their seed papers and suppressions.

A self-service sign-up is ``pending`` until its owner confirms the address (double opt-in):
only ``active`` subscribers are ever planned a digest, so an unconfirmed address receives
the confirmation e-mail and nothing else. ``paused`` keeps everything but sends nothing;
``unsubscribed`` also suppresses the address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from recsys.catalog.papers import storage_keys
from recsys.db.models import (
    DeliveryAttemptRow,
    DigestItemRow,
    DigestRow,
    EventRow,
    ExperimentRow,
    InterestRow,
    PaperRow,
    ProviderEventRow,
    SuppressionRow,
    UserRow,
)
from recsys.digests.outbox import next_send_time
from recsys.domain import Paper
from recsys.recommender.relevance import STRICTNESS
from recsys.subscribers.library import Library, LibraryError, SeedPaper, parse_library

INTEREST_KINDS = ("keyword", "author", "category", "text")
_CONFIRM_SWEEP_LIMIT = 1000  # confirmations one sweep re-enqueues
STATUSES = ("pending", "active", "paused", "unsubscribed")
# The frequencies the planner knows (recsys.digests.schedule.Frequency).
FREQUENCIES = ("daily", "weekdays", "weekly")
MAX_DIGEST_SIZE = 50  # 50 lines still fit in a 100 kB e-mail
MAX_INTERESTS = 100
MAX_INTEREST_CHARS = 2000
# The scorer reads a user's latest 200 events; more seeds than that would push out clicks.
MAX_SEEDS = 100
_EMAIL = re.compile(r"^[^@\s<>\x00-\x1f\x7f]+@[^@\s<>\x00-\x1f\x7f]+\.[^@\s<>\x00-\x1f\x7f]+$")
# Control characters mean garbage input, and PostgreSQL refuses NUL in text outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A name goes into the To header of every message: a line break there makes Python's
# e-mail package refuse the header, so every message to that person would fail. These are
# the characters str.splitlines() breaks at.
_LINE_BREAK = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


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
    _check_name(name or "")
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
    check_text("timezone", name)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SubscriberError("timezone", f"unknown time zone {name!r}") from exc


def check_text(field: str, value: str) -> None:
    """Raise ``SubscriberError`` naming ``field`` when ``value`` holds a control character."""
    if _CONTROL.search(value):
        raise SubscriberError(field, "must not contain control characters")


def _check_name(name: str) -> None:
    if _LINE_BREAK.search(name):
        raise SubscriberError("name", "must be one line: no carriage return or line feed")
    check_text("name", name)


def _interest_row(interest: Interest) -> InterestRow:
    check_text("interests.value", interest.value)
    if interest.kind not in INTEREST_KINDS:
        raise SubscriberError("interests.kind", f"must be one of {', '.join(INTEREST_KINDS)}")
    value = " ".join(interest.value.split())
    if not value:
        raise SubscriberError("interests.value", "must not be empty")
    if len(value) > MAX_INTEREST_CHARS:
        raise SubscriberError("interests.value", f"at most {MAX_INTEREST_CHARS} characters")
    return InterestRow(kind=interest.kind, value=value)


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


def get_user(session: Session, user_id: int) -> UserRow:
    """The subscriber ``user_id``; raise ``SubscriberError`` on ``user_id`` when gone."""
    user = session.get(UserRow, user_id)
    if user is None:
        raise SubscriberError("user_id", f"no user {user_id}")
    return user


# Self-service sign-up and double opt-in -----------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """A change to a subscriber's settings; ``None`` leaves a field as it is.

    ``name=""`` clears the name; ``interests`` replaces all explicit interests.
    """

    name: str | None = None
    timezone: str | None = None
    send_hour: int | None = None
    frequency: str | None = None
    digest_size: int | None = None
    interests: Sequence[Interest] | None = None
    strictness: str | None = None  # a key of recsys.recommender.relevance.STRICTNESS


@dataclass(frozen=True)
class SignUp:
    """The outcome of a sign-up: the row (None when none was made), and whether a
    confirmation e-mail should go out."""

    user: UserRow | None
    needs_confirmation: bool


@dataclass(frozen=True)
class Additions:
    """What a form or request adds besides settings: seed papers, a library, seeds to drop."""

    seeds: Sequence[SeedPaper] = ()
    library: Library | None = None
    remove_seeds: Sequence[int] = ()


def sign_up(
    session: Session,
    email: str,
    now: datetime,
    prefs: Preferences,
    additions: Additions = Additions(),
) -> SignUp:
    """Record a self-service sign-up as ``pending`` until its owner confirms the address.

    Only a new address takes the settings given. An existing account is never changed by a
    sign-up, as anyone can type anyone's address: a confirmed (active or paused) one needs
    no e-mail; a pending or unsubscribed one is only sent a confirmation again (it becomes
    ``pending`` so that it can be confirmed, and keeps its settings, which its owner edits
    once confirmed). An address that bounced, reported spam or was dropped as bad gets no
    e-mail and no account. Everything is checked before anything is written.
    """
    address = normalise_email(email)
    check_preferences(prefs)
    if suppressed_for_delivery(session, address):
        return SignUp(None, needs_confirmation=False)
    user = session.scalar(select(UserRow).where(UserRow.email == address))
    if user is not None:
        if user.status == "unsubscribed":
            user.status = "pending"  # still suppressed, and sent nothing but the confirmation
        return SignUp(user, needs_confirmation=user.status == "pending")
    user = UserRow(email=address, created_at=now, status="pending")
    session.add(user)
    _apply(user, prefs)
    session.flush()
    _add(session, user.id, additions, now)
    return SignUp(user, needs_confirmation=True)


def confirmation_sent(session: Session, user_id: int, now: datetime) -> None:
    """Record that a backend accepted ``user_id``'s confirmation e-mail."""
    session.execute(update(UserRow).where(UserRow.id == user_id).values(confirmation_sent_at=now))


def unsent_confirmations(
    session: Session, now: datetime, *, settle: timedelta, ttl: timedelta, max_attempts: int
) -> list[int]:
    """Pending sign-ups whose confirmation no backend has accepted; counts an attempt each.

    Only sign-ups older than ``settle`` (their own task had time to run) and younger than
    ``ttl`` (the link would have expired anyway), tried fewer than ``max_attempts`` times.
    """
    due = (
        (UserRow.status == "pending")
        & UserRow.confirmation_sent_at.is_(None)
        & (UserRow.created_at < now - settle)
        & (UserRow.created_at > now - ttl)
        & (UserRow.confirmation_attempts < max_attempts)
    )
    ids = list(session.scalars(select(UserRow.id).where(due).limit(_CONFIRM_SWEEP_LIMIT)))
    if ids:
        session.execute(
            update(UserRow)
            .where(UserRow.id.in_(ids))
            .values(confirmation_attempts=UserRow.confirmation_attempts + 1)
        )
    return ids


def suppressed_for_delivery(session: Session, address: str) -> bool:
    """True when ``address`` is suppressed for a reason other than its own unsubscribe."""
    reasons = session.scalars(select(SuppressionRow.reason).where(SuppressionRow.email == address))
    return any(reason != "unsubscribe" for reason in reasons)


def confirm(session: Session, user_id: int, now: datetime) -> bool:
    """Activate a pending subscriber; their first digest is due at once. Idempotent."""
    user = get_user(session, user_id)
    if user.status != "pending":
        return False
    user.status, user.confirmed_at, user.next_digest_at = "active", now, now
    # They just clicked a link we mailed: the address works and wants mail, whatever an
    # earlier unsubscribe, bounce or complaint said.
    session.execute(delete(SuppressionRow).where(SuppressionRow.email == user.email))
    return True


# Preferences -----------------------------------------------------------------------------------


def check_preferences(prefs: Preferences) -> None:
    """Raise ``SubscriberError`` naming the first field of ``prefs`` that is invalid."""
    _check_name(prefs.name or "")
    if prefs.timezone is not None:
        _check_timezone(prefs.timezone)
    if prefs.send_hour is not None and not 0 <= prefs.send_hour <= 23:
        raise SubscriberError("send_hour", "must be an hour from 0 to 23")
    if prefs.frequency is not None and prefs.frequency not in FREQUENCIES:
        raise SubscriberError("frequency", f"must be one of {', '.join(FREQUENCIES)}")
    if prefs.digest_size is not None and not 1 <= prefs.digest_size <= MAX_DIGEST_SIZE:
        raise SubscriberError("digest_size", f"must be from 1 to {MAX_DIGEST_SIZE}")
    if prefs.strictness is not None and prefs.strictness not in STRICTNESS:
        raise SubscriberError("strictness", f"must be one of {', '.join(STRICTNESS)}")
    if prefs.name is not None and len(prefs.name) > 200:
        raise SubscriberError("name", "at most 200 characters")
    if prefs.interests is not None:
        if len(prefs.interests) > MAX_INTERESTS:
            raise SubscriberError("interests", f"at most {MAX_INTERESTS} interests")
        for interest in prefs.interests:
            _interest_row(interest)


def update_preferences(
    session: Session,
    user_id: int,
    prefs: Preferences,
    now: datetime,
    additions: Additions = Additions(),
) -> SeedReport:
    """Apply ``prefs`` and ``additions``; all are checked first, so all or nothing is written.

    A new schedule moves an active user's next digest to the next send time under it.
    """
    user = get_user(session, user_id)
    check_preferences(prefs)
    schedule = (user.timezone, user.send_hour, user.frequency)
    _apply(user, prefs)
    if user.status == "active" and (user.timezone, user.send_hour, user.frequency) != schedule:
        user.next_digest_at = next_send_time(user.timezone, user.send_hour, now, user.frequency)
    session.flush()
    return _add(session, user_id, additions, now)


def _add(session: Session, user_id: int, additions: Additions, now: datetime) -> SeedReport:
    report = add_seeds(session, user_id, additions.seeds, now)
    if additions.library is not None:
        report.merge(import_library(session, user_id, additions.library, now))
    if additions.remove_seeds:
        remove_seeds(session, user_id, additions.remove_seeds)
    return report


def _apply(user: UserRow, prefs: Preferences) -> None:
    if prefs.name is not None:
        user.name = prefs.name.strip() or None
    if prefs.timezone is not None:
        user.timezone = prefs.timezone
    if prefs.send_hour is not None:
        user.send_hour = prefs.send_hour
    if prefs.frequency is not None:
        user.frequency = prefs.frequency
    if prefs.digest_size is not None:
        user.digest_size = prefs.digest_size
    if prefs.strictness is not None:
        user.strictness = prefs.strictness
    if prefs.interests is not None:
        user.interests = [_interest_row(i) for i in _unique(prefs.interests)]


def _unique(interests: Sequence[Interest]) -> list[Interest]:
    seen: set[tuple[str, str]] = set()
    out = []
    for interest in interests:
        key = (interest.kind, " ".join(interest.value.split()).casefold())
        if key not in seen:
            seen.add(key)
            out.append(interest)
    return out


def add_interests(session: Session, user_id: int, interests: Sequence[Interest]) -> int:
    """Add interests the user does not have yet, up to ``MAX_INTERESTS``; return how many."""
    user = get_user(session, user_id)
    have = [Interest(row.kind, row.value) for row in user.interests]
    merged = _unique([*have, *interests])[:MAX_INTERESTS]
    added = merged[len(have) :]
    user.interests = [*user.interests, *(_interest_row(i) for i in added)]
    session.flush()
    return len(added)


def pause(session: Session, user_id: int) -> bool:
    """Stop sending until ``resume``; interests and history are kept. Idempotent."""
    user = get_user(session, user_id)
    if user.status != "active":
        return False
    user.status = "paused"
    return True


def resume(session: Session, user_id: int, now: datetime) -> bool:
    """Send again from the next send hour, after a pause or an unsubscribe. Idempotent."""
    user = get_user(session, user_id)
    if user.status not in ("paused", "unsubscribed"):
        return False
    user.status = "active"
    user.next_digest_at = next_send_time(user.timezone, user.send_hour, now, user.frequency)
    # Only their own unsubscribe is lifted: a bounce or spam report still protects the
    # sender's reputation until the address is confirmed again.
    session.execute(
        delete(SuppressionRow).where(
            SuppressionRow.email == user.email, SuppressionRow.reason == "unsubscribe"
        )
    )
    return True


# Seed papers and library import ----------------------------------------------------------


@dataclass
class SeedReport:
    """What became of the seed papers a user named.

    Every paper named lands in exactly one list, so nothing vanishes without a word.
    """

    found: list[str] = field(default_factory=list)
    as_text: list[str] = field(default_factory=list)  # titles not in the catalogue, kept as topics
    missing: list[str] = field(default_factory=list)  # not in the catalogue, and not kept
    skipped: list[str] = field(default_factory=list)  # library entries not read ("line 26: ...")

    def merge(self, other: SeedReport) -> None:
        self.found += other.found
        self.as_text += other.as_text
        self.missing += other.missing
        self.skipped += other.skipped


def add_seeds(
    session: Session, user_id: int, seeds: Sequence[SeedPaper], now: datetime
) -> SeedReport:
    """Record catalogue papers the user named as ``seed`` events (liked from day one).

    A title not in the catalogue (matched by its fingerprint, so case, accents and
    punctuation do not matter) still says what the user reads, so it becomes a ``text``
    interest; an arXiv id or DOI we do not have cannot be used and is reported missing, as
    are titles past the interest limit and seeds past ``MAX_SEEDS``.
    """
    user = get_user(session, user_id)
    report = SeedReport()
    have = set(session.scalars(_seed_ids(user_id)))
    for seed in seeds[:MAX_SEEDS]:
        paper_id = find_paper(session, seed)
        if paper_id is not None:
            report.found.append(seed.label)
            if paper_id not in have:
                have.add(paper_id)
                session.add(
                    EventRow(user_id=user.id, paper_id=paper_id, kind="seed", created_at=now)
                )
        elif seed.title:
            report.as_text.append(seed.title)
        else:
            report.missing.append(seed.label)
    add_interests(session, user_id, [Interest("text", title) for title in report.as_text])
    _report_dropped_topics(user, report)
    report.missing += [
        f"{s.label} (over the limit of {MAX_SEEDS} seed papers)" for s in seeds[MAX_SEEDS:]
    ]
    return report


def _report_dropped_topics(user: UserRow, report: SeedReport) -> None:
    """Move titles that did not fit under ``MAX_INTERESTS`` from ``as_text`` to ``missing``."""
    kept = {_folded(row.value) for row in user.interests if row.kind == "text"}
    dropped = [title for title in report.as_text if _folded(title) not in kept]
    report.as_text = [title for title in report.as_text if _folded(title) in kept]
    report.missing += [
        f"{title} (over the limit of {MAX_INTERESTS} interests)" for title in dropped
    ]


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _seed_ids(user_id: int) -> Any:
    return select(EventRow.paper_id).where(EventRow.user_id == user_id, EventRow.kind == "seed")


def find_paper(session: Session, seed: SeedPaper) -> int | None:
    """The catalogue id of ``seed``, by arXiv id, then DOI, then title; None if absent."""
    keys = [
        (PaperRow.arxiv_id, seed.arxiv_id),
        (PaperRow.doi, seed.doi),
        (
            PaperRow.title_key,
            storage_keys(Paper(title=seed.title))["title"] if seed.title else None,
        ),
    ]
    for column, value in keys:
        if value:
            found = session.scalar(select(PaperRow.id).where(column == value).limit(1))
            if found is not None:
                return int(found)
    return None


def read_library(text: str) -> Library:
    """Parse a pasted library; ``SubscriberError`` on ``library`` names the bad line or item."""
    try:
        return parse_library(text)
    except LibraryError as exc:
        raise SubscriberError("library", str(exc)) from exc


def import_library(session: Session, user_id: int, library: Library, now: datetime) -> SeedReport:
    """Import a library: its papers as seeds, its top keywords and authors as interests.

    The report lists the entries the parser skipped (line or item, and why) beside what
    became of each paper.
    """
    interests = [Interest("keyword", k) for k in library.keywords]
    add_interests(session, user_id, interests + [Interest("author", a) for a in library.authors])
    report = add_seeds(session, user_id, library.seeds, now)
    report.skipped += [str(entry) for entry in library.skipped]
    return report


def seed_papers(session: Session, user_id: int) -> list[PaperRow]:
    """The catalogue papers a user named as seeds, oldest first."""
    query = (
        select(PaperRow)
        .join(EventRow, EventRow.paper_id == PaperRow.id)
        .where(EventRow.user_id == user_id, EventRow.kind == "seed")
        .order_by(EventRow.id)
    )
    return list(session.scalars(query).unique())


def remove_seeds(session: Session, user_id: int, paper_ids: Sequence[int]) -> None:
    """Forget that the user named these papers."""
    session.execute(
        delete(EventRow).where(
            EventRow.user_id == user_id,
            EventRow.kind == "seed",
            EventRow.paper_id.in_(list(paper_ids)),
        )
    )


# The subscriber's own data -----------------------------------------------------------------


def export_data(session: Session, user_id: int) -> dict[str, Any]:
    """Everything stored about a subscriber, as JSON-ready data (their right of access)."""
    user = get_user(session, user_id)
    return {
        "profile": _profile(user),
        "interests": [{"kind": i.kind, "value": i.value} for i in user.interests],
        "events": _exported_events(session, user_id),
        "digests": _exported_digests(session, user_id),
        "provider_events": _exported_provider_events(session, user_id, user.email),
        "suppressed": is_suppressed(session, user.email),
    }


def _profile(user: UserRow) -> dict[str, Any]:
    fields = ("id", "email", "name", "status", "timezone", "send_hour", "frequency")
    times = ("created_at", "confirmed_at", "unsubscribed_at", "next_digest_at")
    profile: dict[str, Any] = {name: getattr(user, name) for name in fields}
    profile["digest_size"] = user.digest_size
    profile["strictness"] = user.strictness
    profile.update({name: _iso(getattr(user, name)) for name in times})
    return profile


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _exported_events(session: Session, user_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(EventRow, PaperRow.title, PaperRow.url)
        .join(PaperRow, PaperRow.id == EventRow.paper_id)
        .where(EventRow.user_id == user_id)
        .order_by(EventRow.id)
    ).all()
    return [
        {
            "kind": event.kind,
            "paper": {"id": event.paper_id, "title": title, "url": url},
            "digest_id": event.digest_id,
            "created_at": _iso(event.created_at),
            "user_agent": event.user_agent,
            "suspect": event.suspect,
        }
        for event, title, url in rows
    ]


def _exported_digests(session: Session, user_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(DigestRow, ExperimentRow.name)
        .outerjoin(ExperimentRow, ExperimentRow.id == DigestRow.experiment_id)
        .where(DigestRow.user_id == user_id)
        .order_by(DigestRow.id)
    ).all()
    ids = [digest.id for digest, _ in rows]
    items, attempts = _exported_items(session, ids), _exported_attempts(session, ids)
    return [
        {
            **_digest_fields(digest),
            # The arm of the online experiment that ranked it ("holdout" with no experiment).
            "experiment": experiment,
            "variant": digest.variant,
            "items": items.get(digest.id, []),
            "delivery_attempts": attempts.get(digest.id, []),
        }
        for digest, experiment in rows
    ]


def _digest_fields(digest: DigestRow) -> dict[str, Any]:
    return {
        "id": digest.id,
        "period": digest.period,
        "status": digest.status,
        "reason": digest.reason,
        "model_version": digest.model_version,
        "provider_id": digest.provider_id,
        "created_at": _iso(digest.created_at),
        "sent_at": _iso(digest.sent_at),
    }


def _exported_items(session: Session, digest_ids: Sequence[int]) -> dict[int, list[Any]]:
    rows = session.execute(
        select(DigestItemRow, PaperRow.title)
        .join(PaperRow, PaperRow.id == DigestItemRow.paper_id)
        .where(DigestItemRow.digest_id.in_(digest_ids))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    ).all()
    by_digest: dict[int, list[Any]] = {}
    for item, title in rows:
        by_digest.setdefault(item.digest_id, []).append(
            {
                "paper_id": item.paper_id,
                "title": title,
                "score": item.score,
                "reason": item.reason,
                "propensity": item.propensity,
                "explored": item.explored,
            }  # fmt: skip
        )
    return by_digest


def _exported_attempts(session: Session, digest_ids: Sequence[int]) -> dict[int, list[Any]]:
    rows = session.scalars(
        select(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.digest_id.in_(digest_ids))
        .order_by(DeliveryAttemptRow.digest_id, DeliveryAttemptRow.attempt)
    ).all()
    by_digest: dict[int, list[Any]] = {}
    for row in rows:
        by_digest.setdefault(row.digest_id, []).append(
            {
                "attempt": row.attempt,
                "backend": row.backend,
                "started_at": _iso(row.started_at),
                "finished_at": _iso(row.finished_at),
                "outcome": row.outcome,
                "detail": row.detail,
            }  # fmt: skip
        )
    return by_digest


def _exported_provider_events(session: Session, user_id: int, email: str) -> list[Any]:
    """What the mail provider reported about their mail, as received (the payload holds the
    reader's IP address and user agent for opens and clicks)."""
    theirs = select(DigestRow.id).where(DigestRow.user_id == user_id)
    rows = session.scalars(
        select(ProviderEventRow)
        .where((ProviderEventRow.email == email) | ProviderEventRow.digest_id.in_(theirs))
        .order_by(ProviderEventRow.id)
    ).all()
    return [
        {
            "provider": row.provider,
            "kind": row.kind,
            "digest_id": row.digest_id,
            "email": row.email,
            "occurred_at": _iso(row.occurred_at),
            "received_at": _iso(row.received_at),
            "payload": row.payload,
        }  # fmt: skip
        for row in rows
    ]


class SentMailFolder(Protocol):
    """Where the service keeps copies of the mail it sent (the file backend's outbox)."""

    def forget(self, user_id: int, digest_ids: Iterable[int]) -> int:
        """Delete every message kept for ``user_id`` and their ``digest_ids``."""
        ...


def delete_account(session: Session, user_id: int, sent_mail: SentMailFolder) -> bool:
    """Erase a subscriber from every store we write. Idempotent; True if there was one.

    The database rows go: the account, interests, events, digests with their items and
    delivery attempts, and every provider event naming the address or one of their digests
    (those hold the reader's IP and user agent). So do the copies of their mail in
    ``sent_mail``, first: they are found by digest id, which the rows hold, and if removing
    them fails the caller's transaction rolls back and the deletion can be asked again.

    A bounce, spam-report or dropped-address suppression is kept: it is what stops us
    mailing a dead or hostile address again, and holds only the address, the reason and
    the time. An unsubscribe suppression goes, since no account is left to mail and a new
    sign-up must be confirmed from the address anyway.
    """
    user = session.get(UserRow, user_id)
    if user is None:
        return False
    email = user.email
    digest_ids = session.scalars(select(DigestRow.id).where(DigestRow.user_id == user_id)).all()
    sent_mail.forget(user_id, digest_ids)
    _delete_digests(session, digest_ids, email)
    session.execute(
        delete(SuppressionRow).where(
            SuppressionRow.email == email, SuppressionRow.reason == "unsubscribe"
        )
    )
    # Explicit rather than left to ON DELETE CASCADE, which a SQLite connection without
    # PRAGMA foreign_keys would skip.
    session.execute(delete(EventRow).where(EventRow.user_id == user_id))
    session.execute(delete(InterestRow).where(InterestRow.user_id == user_id))
    session.execute(delete(UserRow).where(UserRow.id == user_id))
    session.expunge(user)
    return True


def _delete_digests(session: Session, digest_ids: Sequence[int], email: str) -> None:
    # Provider events first: their digest_id is ON DELETE SET NULL, so deleting the digests
    # first would leave an event with the reader's IP that no longer names its digest.
    session.execute(
        delete(ProviderEventRow).where(
            (ProviderEventRow.email == email) | ProviderEventRow.digest_id.in_(digest_ids)
        )
    )
    session.execute(delete(DeliveryAttemptRow).where(DeliveryAttemptRow.digest_id.in_(digest_ids)))
    session.execute(delete(DigestItemRow).where(DigestItemRow.digest_id.in_(digest_ids)))
    session.execute(delete(DigestRow).where(DigestRow.id.in_(digest_ids)))
