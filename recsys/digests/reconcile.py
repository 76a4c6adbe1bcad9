"""Reconciliation: provider events in, and a sweep that finishes whatever lost its task.

**Events.** SendGrid's Event Webhook reports what happened to each accepted message
(``processed``, ``delivered``, ``bounce``, ...), carrying our ``digest_id`` custom argument.
:func:`ingest_events` stores each event once (keyed by ``sg_event_id``; SendGrid delivers at
least once), marks the digests they prove accepted as ``sent`` and suppresses addresses that
bounced, reported spam or were dropped as bad.

**Sweep.** Run by beat every few minutes, :func:`sweep` works from the outbox rows alone, so a
lost broker message, a restarted Redis or a killed worker never loses a digest:

- ``planned`` or ``ranked`` rows whose task's lease ran out (the task started, then stopped
  renewing: its worker died), or that sat without a lease for ``stale_after`` (the queued
  task was lost with the broker), are handed back for scoring or sending (both tasks are
  idempotent, so a duplicate task is harmless);
- ``unknown`` rows, and ``sending`` rows whose lease ran out (or, without one, stale), are
  resolved: ``sent`` when an event proves the
  provider took the message; back to ``ranked`` only when it provably did not (below);
  otherwise left alone. They are never resent on a guess.

*Provably not accepted* means: the file backend (rewriting the same file is harmless), or,
for SendGrid, no event for the digest within ``grace`` of the attempt while the Event
Webhook is configured (``events_expected``), or SendGrid's event stream has moved more than
``grace`` past the attempt without one event for it. SendGrid reports every accepted message
(``processed`` at least) and posts events in batches every 30 s or so, so a minute of silence
about one digest means the request was never taken. The risk is an event SendGrid holds
back longer than ``grace`` (an incident on its side, our webhook down): the digest is then
sent twice, and the late event is kept but cannot unsend it. Without a webhook no events
arrive and nothing is resent: those rows wait in ``unknown`` for an operator. SMTP gives no
events, so the same holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recsys.db.bulk import is_postgresql
from recsys.db.models import DeliveryAttemptRow, DigestRow, ProviderEventRow, SuppressionRow
from recsys.digests.outbox import abandoned, stale
from recsys.settings import Settings

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
MAX_EVENT_ID_CHARS = 128
# Row ids are 64-bit integers: a larger digest_id is no digest of ours, and would make the
# database driver fail for the whole batch instead of the lookup finding nothing.
MAX_DIGEST_ID = 2**63 - 1
# Unix times Python's datetime can hold (years 1970 to 9999); SendGrid's are seconds now.
MAX_UNIX_TIME = 253_402_300_799
# A header timestamp is ten digits until the year 2286; longer is not a time.
MAX_TIMESTAMP_DIGITS = 12
_SURROGATE = re.compile("[\ud800-\udfff]")
# Every event about a message shows SendGrid accepted it ("dropped" too: accepted, then not
# delivered). Only an event like this resolves an unknown digest as sent.
ACCEPTANCE_EVENTS = frozenset(
    {"processed", "deferred", "delivered", "bounce", "dropped", "open", "click", "spamreport"}
    | {"unsubscribe", "group_unsubscribe", "group_resubscribe"}
)
# Addresses that must never be mailed again. A "blocked" bounce is the receiving server
# refusing for now (reputation, rate), not a dead address, so it does not suppress.
SUPPRESSING_EVENTS = frozenset({"bounce", "spamreport", "dropped"})
_BAD_ADDRESS_DROPS = ("bounced address", "spam reporting address", "unsubscribed address")
_WATERMARK_SAMPLE = 1000
_INSERT_SLICE = 1000
_UNRESOLVED_LIMIT = 10_000
_UNRESOLVED = ("unknown", "sending")


# Webhook signatures -------------------------------------------------------------------------


class SignatureError(ValueError):
    """A webhook request that is not provably from SendGrid, or too old to accept."""


def verify_signature(
    public_key: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
    tolerance_s: float,
) -> None:
    """Check SendGrid's ECDSA signature over ``timestamp + body``; raise :class:`SignatureError`.

    Parameters
    ----------
    public_key : str
        The verification key from SendGrid's Event Webhook settings (base64 DER, or PEM).
    signature, timestamp : str or None
        The ``X-Twilio-Email-Event-Webhook-Signature`` and ``-Timestamp`` headers.
    body : bytes
        The raw request body, exactly as received: re-serialised JSON would not verify.
    now : datetime
        The current time; a timestamp further than ``tolerance_s`` from it is refused, so a
        captured request cannot be replayed later.
    """
    if not signature or not timestamp:
        raise SignatureError("missing SendGrid signature or timestamp header")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        # int() would take a 4,000-digit header, and comparing it with now overflows a float.
        raise SignatureError("malformed signature or timestamp header")
    try:
        stamp = int(timestamp)
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError("malformed signature or timestamp header") from exc
    if abs(now.timestamp() - stamp) > tolerance_s:
        raise SignatureError(f"timestamp {stamp} is more than {tolerance_s:.0f}s from now")
    try:
        _public_key(public_key).verify(
            raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as exc:
        raise SignatureError("signature does not match the body") from exc


@lru_cache(maxsize=4)
def _public_key(text: str) -> ec.EllipticCurvePublicKey:
    try:
        stripped = text.strip()
        if stripped.startswith("-----BEGIN"):
            key = load_pem_public_key(stripped.encode())
        else:
            key = load_der_public_key(base64.b64decode(stripped))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(
            "PAPERBOY_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key; paste the "
            "verification key from SendGrid's Event Webhook settings"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("PAPERBOY_SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA (EC) key")
    return key


# Events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderEvent:
    """One SendGrid event, validated."""

    event_id: str
    kind: str
    email: str
    occurred_at: datetime
    digest_id: int | None
    message_id: str | None
    payload: dict[str, Any]

    @property
    def suppresses(self) -> str | None:
        """The suppression reason this event calls for, if any."""
        if self.kind not in SUPPRESSING_EVENTS:
            return None
        if self.kind == "bounce" and self.payload.get("type") == "blocked":
            return None
        if self.kind == "dropped":
            reason = str(self.payload.get("reason", "")).lower()
            if reason != "invalid" and not reason.startswith(_BAD_ADDRESS_DROPS):
                return None  # e.g. "Spam Content": the message, not the address
        return self.kind


@dataclass
class IngestReport:
    """What :func:`ingest_events` did with one webhook delivery."""

    received: int = 0
    new: int = 0
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)
    accepted_digests: int = 0
    suppressed: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def parse_event(raw: object) -> ProviderEvent:
    """Validate one element of a webhook body; ``ValueError`` names what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("an event must be a JSON object")
    event_id = raw.get("sg_event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        raise ValueError("sg_event_id must be a non-empty string of at most 128 characters")
    kind, email, stamp = raw.get("event"), raw.get("email"), raw.get("timestamp")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"event {event_id}: 'event' must be a non-empty string")
    if not isinstance(email, str) or "@" not in email:
        raise ValueError(f"event {event_id}: 'email' must be an address")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ValueError(f"event {event_id}: 'timestamp' must be a Unix time")
    if not 0 <= stamp <= MAX_UNIX_TIME:  # also false for NaN
        raise ValueError(f"event {event_id}: 'timestamp' {stamp} is out of range")
    if not _storable(raw):
        raise ValueError(f"event {event_id}: holds a NUL or a lone surrogate, which is not text")
    message_id = raw.get("sg_message_id")
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        email=email.strip().lower(),
        occurred_at=datetime.fromtimestamp(stamp, UTC),
        digest_id=_digest_id(event_id, raw.get("digest_id")),
        message_id=message_id if isinstance(message_id, str) else None,
        payload=raw,
    )


def _storable(raw: dict[str, Any]) -> bool:
    # PostgreSQL refuses NUL and lone surrogates in text and JSON alike; one such event
    # would fail the insert of the whole batch.
    text = json.dumps(raw, ensure_ascii=False)
    return "\\u0000" not in text and not _SURROGATE.search(text)


def _digest_id(event_id: str, value: object) -> int | None:
    # Our custom argument, sent as a string (SendGrid requires strings); other mail sent
    # through the same account has none. isdigit() alone would pass "²", which int() refuses.
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        return None
    if len(value) > len(str(MAX_DIGEST_ID)) or int(value) > MAX_DIGEST_ID:
        raise ValueError(f"event {event_id}: 'digest_id' {value[:30]} is out of range")
    return int(value)


def ingest_events(session: Session, raw_events: Sequence[object], now: datetime) -> IngestReport:
    """Store new events once each, then act on them (see the module docstring).

    Malformed events are counted in ``invalid`` with the reason and skipped: SendGrid would
    re-post a rejected batch for a day, so one bad element must not block the others.
    """
    report = IngestReport(received=len(raw_events))
    parsed: dict[str, ProviderEvent] = {}
    for raw in raw_events:
        try:
            event = parse_event(raw)
        except ValueError as exc:
            report.invalid.append(str(exc))
            continue
        parsed.setdefault(event.event_id, event)
    new = _store_new(session, list(parsed.values()), now)
    report.new = len(new)
    report.duplicates = report.received - len(report.invalid) - report.new
    report.accepted_digests = _mark_accepted(session, new, now)
    report.suppressed = _suppress(session, new, now)
    return report


def _store_new(session: Session, events: list[ProviderEvent], now: datetime) -> list[ProviderEvent]:
    """Insert the events not stored yet; return those (the unique event id decides)."""
    if not events:
        return []
    known = _existing_digests(session, {e.digest_id for e in events if e.digest_id is not None})
    rows = [
        {
            "provider": PROVIDER,
            "event_id": e.event_id,
            "digest_id": e.digest_id if e.digest_id in known else None,
            "email": e.email,
            "kind": e.kind[:32],
            "occurred_at": e.occurred_at,
            "received_at": now,
            "payload": e.payload,
        }
        for e in events
    ]
    inserted: set[str] = set()
    # Sliced: PostgreSQL takes at most 65,535 parameters a statement, and a batch from
    # SendGrid can hold thousands of events.
    for start in range(0, len(rows), _INSERT_SLICE):
        stmt = (
            _insert(session)(ProviderEventRow)
            .values(rows[start : start + _INSERT_SLICE])
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(ProviderEventRow.event_id)
        )
        inserted.update(session.scalars(stmt).all())
    return [e for e in events if e.event_id in inserted]


def _insert(session: Session) -> Any:
    return postgresql.insert if is_postgresql(session) else sqlite.insert


def _existing_digests(session: Session, ids: set[int]) -> set[int]:
    # An id from another installation (or a deleted digest) would break the foreign key.
    if not ids:
        return set()
    return set(session.scalars(select(DigestRow.id).where(DigestRow.id.in_(ids))).all())


def _mark_accepted(session: Session, events: list[ProviderEvent], now: datetime) -> int:
    """Digests an event proves accepted become ``sent`` (if not already)."""
    first: dict[int, ProviderEvent] = {}
    for e in sorted(events, key=lambda e: e.occurred_at):
        if e.digest_id is not None and e.kind in ACCEPTANCE_EVENTS:
            first.setdefault(e.digest_id, e)
    changed = 0
    for digest_id, event in first.items():
        changed += _resolve_sent(session, digest_id, event, now)
    return changed


def _resolve_sent(session: Session, digest_id: int, event: ProviderEvent, now: datetime) -> int:
    # "ranked" too: a digest put back for sending whose acceptance shows up late must not
    # go out a second time.
    stmt = (
        update(DigestRow)
        .where(DigestRow.id == digest_id, DigestRow.status.in_((*_UNRESOLVED, "ranked")))
        .values(
            status="sent",
            sent_at=func.coalesce(DigestRow.sent_at, event.occurred_at),
            provider_id=func.coalesce(DigestRow.provider_id, event.message_id),
            reason=f"accepted: SendGrid reported {event.kind} {event.event_id}",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    changed: int = session.execute(stmt).rowcount  # type: ignore[attr-defined]
    if changed:
        _close_attempts(session, [digest_id], "sent", f"{event.kind} event {event.event_id}", now)
        log.info(
            "digest %s resolved as sent from a %s event",
            digest_id,
            event.kind,
            extra={"digest_id": digest_id},
        )
    return changed


def _close_attempts(
    session: Session, digest_ids: list[int], outcome: str, detail: str, now: datetime
) -> None:
    """Finish the attempts a lost worker or a lost reply left open."""
    session.execute(
        update(DeliveryAttemptRow)
        .where(
            DeliveryAttemptRow.digest_id.in_(digest_ids), DeliveryAttemptRow.finished_at.is_(None)
        )
        .values(outcome=outcome, finished_at=now, detail=detail)
        .execution_options(synchronize_session=False)
    )


def _suppress(session: Session, events: list[ProviderEvent], now: datetime) -> int:
    reasons = {e.email: r for e in events if (r := e.suppresses) is not None}
    if not reasons:
        return 0
    rows = [{"email": email, "reason": r, "created_at": now} for email, r in reasons.items()]
    added = 0
    for start in range(0, len(rows), _INSERT_SLICE):
        stmt = (
            _insert(session)(SuppressionRow)
            .values(rows[start : start + _INSERT_SLICE])
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(SuppressionRow.id)
        )
        added += len(session.scalars(stmt).all())
    return added


# Sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPolicy:
    """How long to wait before the sweep acts; see :mod:`recsys.settings` for each."""

    stale_after: timedelta = timedelta(minutes=15)
    grace: timedelta = timedelta(minutes=30)
    max_attempts: int = 8
    limit: int = 10_000
    # True when the Event Webhook is configured: silence for ``grace`` then proves a SendGrid
    # attempt was not accepted. False: only the event stream moving past it does.
    events_expected: bool = False


@dataclass
class SweepReport:
    """What one sweep decided. ``score`` and ``send`` are for the caller to enqueue."""

    score: list[int] = field(default_factory=list)
    send: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    waiting: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: len(v) if isinstance(v, list) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class _Attempt:
    digest_id: int
    backend: str
    started_at: datetime


def sweep(
    session: Session, now: datetime, policy: SweepPolicy | None = None, *, queues_lost: bool = False
) -> SweepReport:
    """One pass over the outbox; idempotent. Enqueue ``report.score`` / ``report.send``
    after the session commits.

    ``queues_lost`` says the broker lost its queues (it restarted empty): then every
    ``planned`` or ``ranked`` row that no running task holds is provably without a task and
    is re-enqueued now, rather than after ``stale_after``.
    """
    policy = policy or SweepPolicy()
    before = now - policy.stale_after
    queued_before = now if queues_lost else before
    report = SweepReport()
    report.accepted = _accepted_by_events(session, now, before)
    report.requeued, report.waiting = _requeue_not_accepted(session, now, before, policy)
    report.gave_up = _give_up(session, now, policy.max_attempts)
    stuck = _touch(
        session, _lost(session, "ranked", now, queued_before, policy.limit), "ranked", now
    )
    report.send = sorted(set(report.requeued) | set(stuck))
    report.score = _touch(
        session, _lost(session, "planned", now, queued_before, policy.limit), "planned", now
    )
    return report


def _lost(session: Session, status: str, now: datetime, before: datetime, limit: int) -> list[int]:
    """Rows in ``status`` whose task's lease ran out, then those queued since before ``before``."""
    lost = abandoned(session, status, now, limit)
    return sorted(set(lost) | set(stale(session, status, before, limit - len(lost), now)))


def _unresolved(
    session: Session, now: datetime, before: datetime, among: Sequence[int] | None = None
) -> list[int]:
    """``unknown`` digests, and ``sending`` ones whose worker is gone (its lease ran out) or,
    for rows claimed before leases existed, has had ample time; only ``among`` when given."""
    gone = (DigestRow.lease_until < now) | (
        DigestRow.lease_until.is_(None) & (DigestRow.updated_at < before)
    )
    query = select(DigestRow.id).where(
        (DigestRow.status == "unknown") | ((DigestRow.status == "sending") & gone)
    )
    if among is not None:
        query = query.where(DigestRow.id.in_(among))
    return list(session.scalars(query.order_by(DigestRow.id).limit(_UNRESOLVED_LIMIT)).all())


def _accepted_by_events(
    session: Session, now: datetime, before: datetime, among: Sequence[int] | None = None
) -> list[int]:
    """Unresolved digests with an acceptance event on file (it came before they were stuck)."""
    ids = _unresolved(session, now, before, among)
    if not ids:
        return []
    proven = select(ProviderEventRow.id).where(
        ProviderEventRow.digest_id == DigestRow.id,
        ProviderEventRow.kind.in_(ACCEPTANCE_EVENTS),
    )
    stmt = (
        update(DigestRow)
        .where(DigestRow.id.in_(ids), DigestRow.status.in_(_UNRESOLVED), exists(proven))
        .values(status="sent", sent_at=now, reason="accepted: provider event on file")
        .returning(DigestRow.id)
        .execution_options(synchronize_session=False)
    )
    accepted = sorted(session.scalars(stmt).all())
    if accepted:
        _close_attempts(session, accepted, "sent", "provider event on file", now)
    return accepted


def _requeue_not_accepted(
    session: Session,
    now: datetime,
    before: datetime,
    policy: SweepPolicy,
    among: Sequence[int] | None = None,
) -> tuple[list[int], int]:
    ids = _unresolved(session, now, before, among)
    if not ids:
        return [], 0
    attempts = _latest_attempts(session, ids)
    watermark = event_watermark(session)
    lost = [i for i in ids if provably_not_accepted(attempts.get(i), watermark, now, policy)]
    if lost:
        _back_to_ranked(session, lost, now)
    return lost, len(ids) - len(lost)


def provably_not_accepted(
    attempt: _Attempt | None, watermark: datetime | None, now: datetime, policy: SweepPolicy
) -> bool:
    """Whether an unresolved attempt certainly did not reach the provider (so resending it
    cannot deliver the digest twice); the one rule the sweep resends by."""
    if attempt is None:
        return True  # claimed, but the attempt was never recorded, so never made
    if attempt.backend == "file":
        return True  # rewriting digest-<id>.eml is harmless
    if attempt.backend == PROVIDER:
        deadline = attempt.started_at + policy.grace
        # Silence for the whole grace about this digest (its acceptance event would have
        # resolved it as sent before this rule is asked), or the stream moving past it.
        return (policy.events_expected and now > deadline) or (
            watermark is not None and watermark > deadline
        )
    return False  # SMTP reports nothing later: an operator decides


def event_watermark(session: Session) -> datetime | None:
    """How far SendGrid's event stream has reached: the latest time among recent events.

    Read from the newest rows by id (indexed) rather than ``max(occurred_at)`` over a table
    that grows with every open and click.
    """
    recent = (
        select(ProviderEventRow.occurred_at)
        .where(ProviderEventRow.provider == PROVIDER)
        .order_by(ProviderEventRow.id.desc())
        .limit(_WATERMARK_SAMPLE)
        .subquery()
    )
    result: datetime | None = session.scalar(select(func.max(recent.c.occurred_at)))
    if result is not None and result.tzinfo is None:
        result = result.replace(tzinfo=UTC)  # SQLite's max() bypasses the column type
    return result


def _latest_attempts(session: Session, ids: list[int]) -> dict[int, _Attempt]:
    rows = session.execute(
        select(
            DeliveryAttemptRow.digest_id,
            DeliveryAttemptRow.backend,
            DeliveryAttemptRow.started_at,
        )
        .where(DeliveryAttemptRow.digest_id.in_(ids))
        .order_by(DeliveryAttemptRow.digest_id, DeliveryAttemptRow.attempt)
    ).all()
    return {d: _Attempt(d, backend, started) for d, backend, started in rows}  # last one wins


def _back_to_ranked(session: Session, ids: list[int], now: datetime) -> None:
    seen = f"no acceptance event for it by {now.isoformat()}"
    _close_attempts(session, ids, "unknown", "worker lost during the send", now)
    session.execute(
        update(DigestRow)
        .where(DigestRow.id.in_(ids), DigestRow.status.in_(_UNRESOLVED))
        .values(
            status="ranked",
            updated_at=now,
            lease_until=None,
            reason=f"not accepted ({seen}); sending again",
        )
        .execution_options(synchronize_session=False)
    )
    log.warning("re-queued %d digests the provider provably did not accept", len(ids))


def _give_up(session: Session, now: datetime, max_attempts: int) -> list[int]:
    """Ranked digests that used up their attempts fail, saying why, instead of cycling."""
    stmt = (
        update(DigestRow)
        .where(DigestRow.status == "ranked", DigestRow.attempts >= max_attempts)
        .values(status="failed", updated_at=now, reason=f"gave up after {max_attempts} attempts")
        .returning(DigestRow.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt).all())


def _touch(session: Session, ids: list[int], status: str, now: datetime) -> list[int]:
    # Restart the stale clock of what we re-enqueue and drop the dead task's lease, so the
    # next sweep does not enqueue the same rows again while their tasks are still queued.
    if ids:
        session.execute(
            update(DigestRow)
            .where(DigestRow.id.in_(ids), DigestRow.status == status)
            .values(updated_at=now, lease_until=None)
            .execution_options(synchronize_session=False)
        )
    return ids


# One digest, on an operator's request ------------------------------------------------------


@dataclass(frozen=True)
class Recheck:
    """What :func:`recheck` decided for one digest; ``task`` is for the caller to enqueue
    (with the digest id) after the session commits."""

    outcome: str  # sent | requeued | waiting | not-stuck
    task: str | None
    message: str


def recheck(
    session: Session, digest_id: int, now: datetime, policy: SweepPolicy | None = None
) -> Recheck:
    """The sweep's rules applied to one digest now (the operator's "re-check" button).

    The same steps and conditions as :func:`sweep`, so a click can never resend a digest
    the sweep would have left alone: resolved as sent on an acceptance event, handed back
    for sending only when provably not accepted, a lost score or send task re-enqueued.
    """
    policy = policy or SweepPolicy()
    before = now - policy.stale_after
    if _accepted_by_events(session, now, before, [digest_id]):
        return Recheck("sent", None, f"digest {digest_id}: a provider event proves it was sent")
    requeued, waiting = _requeue_not_accepted(session, now, before, policy, [digest_id])
    if requeued:
        return Recheck("requeued", "send", f"digest {digest_id}: provably not sent; sending again")
    if waiting:
        return Recheck("waiting", None, f"digest {digest_id}: no proof either way yet; left alone")
    for status, task in (("ranked", "send"), ("planned", "score")):
        if digest_id in _lost(session, status, now, before, policy.limit):
            _touch(session, [digest_id], status, now)
            return Recheck("requeued", task, f"digest {digest_id}: its {task} task was lost")
    return Recheck("not-stuck", None, f"digest {digest_id} is not stuck; nothing to do")


def sweep_policy(settings: Settings) -> SweepPolicy:
    """The sweep's policy from the settings (the worker's sweep and the admin page alike)."""
    return SweepPolicy(
        stale_after=timedelta(seconds=settings.sweep_stale_after_s),
        grace=timedelta(seconds=settings.reconcile_grace_s),
        max_attempts=settings.max_send_attempts,
        # Without the Event Webhook no event ever comes: silence would prove nothing.
        events_expected=settings.sendgrid_webhook_public_key is not None,
    )
