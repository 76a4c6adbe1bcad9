"""Send ranked digests: claim, record the attempt, hand over to the backend, record the outcome.

The claim (``ranked -> sending``) and a ``delivery_attempts`` row are committed together
*before* the backend is called, so every attempt is on record even if this process dies
mid-send. Such a row stays ``sending`` until the sweep (:mod:`recsys.reconcile`) resolves it
from the provider's events, instead of being sent blindly a second time.

A rendered-mode backend (:class:`~recsys.delivery.EmailBackend`) gets one composed message
per request; a template-mode one (:class:`~recsys.delivery.BatchEmailBackend`) gets up to its
``batch_size`` digests in one request, whose single outcome applies to all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recsys.db.models import (
    DeliveryAttemptRow,
    DigestItemRow,
    DigestRow,
    PaperRow,
    SuppressionRow,
    UserRow,
)
from recsys.db.session import Database
from recsys.delivery import (
    BatchEmailBackend,
    DeliveryError,
    DigestEmail,
    DigestLine,
    EmailBackend,
    SendResult,
    compose,
)
from recsys.digests import claim_many
from recsys.links import Keyring, LinkMaker
from recsys.settings import Settings

Clock = Callable[[], datetime]
Backend = EmailBackend | BatchEmailBackend
SUPPRESSED_REASON = "address is suppressed"


class Outcome(StrEnum):
    SENT = "sent"
    NOT_CLAIMED = "not-claimed"  # another worker has it, or it is no longer ranked
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RETRY = "retry"


@dataclass(frozen=True)
class SendOutcome:
    outcome: Outcome
    retry_after_s: float | None = None
    detail: str = ""


@dataclass
class SendReport:
    """What happened to each digest of one :func:`send_digests` call."""

    outcomes: dict[int, SendOutcome] = field(default_factory=dict)

    def ids(self, outcome: Outcome) -> list[int]:
        return sorted(i for i, o in self.outcomes.items() if o.outcome is outcome)

    def retry_after_s(self) -> float | None:
        """The longest wait the provider asked for among the digests to retry."""
        waits = [o.retry_after_s for o in self.outcomes.values() if o.retry_after_s is not None]
        return max(waits, default=None)


def send_digest(
    db: Database, backend: Backend, settings: Settings, digest_id: int, now: datetime
) -> SendOutcome:
    """Deliver digest ``digest_id`` once; report what happened (see ``Outcome``)."""
    return send_digests(db, backend, settings, [digest_id], lambda: now).outcomes[digest_id]


def send_digests(
    db: Database, backend: Backend, settings: Settings, digest_ids: Sequence[int], clock: Clock
) -> SendReport:
    """Deliver every still-``ranked`` digest in ``digest_ids``; idempotent.

    Rendered backends send one request per digest over a kept-alive connection; batch
    backends one request per ``batch_size`` digests. ``clock`` is read per request, so
    each attempt records when it really started.
    """
    size = backend.batch_size if isinstance(backend, BatchEmailBackend) else 1
    ids = sorted(set(digest_ids))
    report = SendReport()
    for start in range(0, len(ids), size):
        group = _send_group(db, backend, settings, ids[start : start + size], clock)
        report.outcomes.update(group)
        if any(o.outcome is Outcome.UNKNOWN for o in group.values()):
            # The provider stopped answering in time: sending on would stack one timeout per
            # digest. The rest stay ranked (never claimed) and come back with the retry.
            deferred = SendOutcome(Outcome.RETRY, detail="deferred: the previous send timed out")
            report.outcomes.update({i: deferred for i in ids[start + size :]})
            break
    return report


def _send_group(
    db: Database, backend: Backend, settings: Settings, ids: list[int], clock: Clock
) -> dict[int, SendOutcome]:
    now = clock()
    with db.session() as session:
        claimed = claim_many(
            session, ids, "ranked", "sending", now, attempts=DigestRow.attempts + 1
        )
        emails, suppressed = load_emails(session, settings, claimed, now)
        claim_many(session, suppressed, "sending", "skipped", now, reason=SUPPRESSED_REASON)
        _record_attempts(session, [e.digest_id for e in emails], backend.name, now)
    outcomes = {i: SendOutcome(Outcome.NOT_CLAIMED) for i in ids if i not in claimed}
    outcomes |= {i: SendOutcome(Outcome.SKIPPED, detail=SUPPRESSED_REASON) for i in suppressed}
    if emails:
        result = _deliver(backend, settings, emails, now)
        with db.session() as session:
            outcomes |= _record(session, [e.digest_id for e in emails], result, clock())
    return outcomes


def _deliver(
    backend: Backend, settings: Settings, emails: list[DigestEmail], now: datetime
) -> SendResult | DeliveryError:
    """Call the backend; every failure comes back as a classified :class:`DeliveryError`."""
    try:
        if isinstance(backend, BatchEmailBackend):
            return backend.send_batch(emails)
        (email,) = emails
        return backend.send(compose(email, settings.from_email, now=now), digest_id=email.digest_id)
    except DeliveryError as exc:
        return exc
    except ValueError as exc:
        # A digest we cannot render (over the size limit, a bad link) fails the same way
        # every time: record it as a permanent failure rather than retrying forever.
        return DeliveryError(f"cannot build the message: {exc}", transient=False)


def _record_attempts(session: Session, digest_ids: list[int], backend: str, now: datetime) -> None:
    if not digest_ids:
        return
    numbers = session.execute(
        select(DigestRow.id, DigestRow.attempts).where(DigestRow.id.in_(digest_ids))
    ).all()
    session.add_all(
        DeliveryAttemptRow(digest_id=i, attempt=n, backend=backend, started_at=now)
        for i, n in numbers
    )


def _record(
    session: Session, ids: list[int], result: SendResult | DeliveryError, now: datetime
) -> dict[int, SendOutcome]:
    """Move the digests out of ``sending`` and close their attempts with the outcome."""
    if isinstance(result, SendResult):
        claim_many(
            session, ids, "sending", "sent", now, provider_id=result.provider_id, sent_at=now
        )
        _finish_attempts(session, ids, "sent", result.provider_id, now)
        return {i: SendOutcome(Outcome.SENT) for i in ids}
    new, outcome, attempt = _failure_kind(result)
    claim_many(session, ids, "sending", new, now, reason=str(result))
    _finish_attempts(session, ids, attempt, str(result), now)
    wait = result.retry_after_s
    return {i: SendOutcome(outcome, wait, str(result)) for i in ids}


def _failure_kind(error: DeliveryError) -> tuple[str, Outcome, str]:
    """(new digest status, outcome, attempt outcome) for a classified failure."""
    if error.unknown:
        # The provider may have accepted it: never resend blindly; the sweep decides.
        return "unknown", Outcome.UNKNOWN, "unknown"
    if error.transient:
        return "ranked", Outcome.RETRY, "transient"
    return "failed", Outcome.FAILED, "permanent"


def _finish_attempts(
    session: Session, ids: list[int], outcome: str, detail: str | None, now: datetime
) -> None:
    session.execute(
        update(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.digest_id.in_(ids), DeliveryAttemptRow.finished_at.is_(None))
        .values(outcome=outcome, detail=detail, finished_at=now)
        .execution_options(synchronize_session=False)
    )


# Building the e-mails ------------------------------------------------------------------------


def load_emails(
    session: Session, settings: Settings, digest_ids: Sequence[int], now: datetime
) -> tuple[list[DigestEmail], list[int]]:
    """The e-mails for ``digest_ids``, and the ids whose address is suppressed (not built).

    Three queries whatever the number of digests, so a 1,000-digest batch costs no more
    round trips than one digest.
    """
    if not digest_ids:
        return [], []
    pairs = session.execute(
        select(DigestRow, UserRow)
        .join(UserRow, UserRow.id == DigestRow.user_id)
        .where(DigestRow.id.in_(list(digest_ids)))
        .order_by(DigestRow.id)
    ).all()
    blocked = _suppressed(session, [u.email for _, u in pairs])
    suppressed = [d.id for d, u in pairs if u.email in blocked]
    wanted = [(d, u) for d, u in pairs if u.email not in blocked]
    items = _items(session, [d.id for d, _ in wanted])
    expires = now + timedelta(days=settings.link_ttl_days)
    links = LinkMaker(Keyring.from_settings(settings), settings.public_base_url, expires)
    emails = [_email(d, u, items[d.id], links) for d, u in wanted]
    return emails, suppressed


def build_email(
    session: Session, settings: Settings, digest_id: int, now: datetime
) -> DigestEmail | None:
    """The e-mail for one digest, or None when its address is suppressed."""
    emails, _ = load_emails(session, settings, [digest_id], now)
    return emails[0] if emails else None


def _suppressed(session: Session, addresses: list[str]) -> set[str]:
    query = select(SuppressionRow.email).where(SuppressionRow.email.in_(addresses))
    return set(session.scalars(query).all())


def _items(session: Session, digest_ids: list[int]) -> dict[int, list[Any]]:
    rows = session.execute(
        select(
            DigestItemRow.digest_id,
            DigestItemRow.reason,
            PaperRow.id,
            PaperRow.title,
            PaperRow.authors,
        )
        .join(PaperRow, PaperRow.id == DigestItemRow.paper_id)
        .where(DigestItemRow.digest_id.in_(digest_ids))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    ).all()
    by_digest: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_digest[row.digest_id].append(row)
    return by_digest


def _email(digest: DigestRow, user: UserRow, items: list[Any], links: LinkMaker) -> DigestEmail:
    lines = tuple(
        DigestLine(
            paper_id=row.id,
            title=row.title,
            authors=tuple(row.authors),
            reason=row.reason,
            click_url=links.click(user.id, row.id, digest.id),
            more_url=links.more(user.id, row.id, digest.id),
            less_url=links.less(user.id, row.id, digest.id),
        )
        for row in items
    )
    n = len(lines)
    return DigestEmail(
        digest_id=digest.id,
        to_email=user.email,
        to_name=user.name,
        subject=f"Your Paperboy digest: {n} new paper{'s' if n != 1 else ''} for {digest.period}",
        period_label=digest.period,
        items=lines,
        unsubscribe_url=links.unsubscribe(user.id, user.created_at),
        preferences_url=links.preferences(user.id, user.created_at),
    )
