"""Send ranked digests: claim, record the attempt, hand over to the backend, record the outcome.

The claim (``ranked -> sending``) and a ``delivery_attempts`` row are committed together
*before* the backend is called, so every attempt is on record even if this process dies
mid-send. Such a row stays ``sending`` until the sweep (:mod:`recsys.digests.reconcile`) resolves it
from the provider's events, instead of being sent blindly a second time.

A call leases the digests it was given (``settings.digest_lease_s``) and renews the lease of
those it has not reached yet as it goes; each claim carries its own lease. When this process
dies, the leases run out and the sweep takes the rows over within a sweep interval.

A rendered-mode backend (:class:`~recsys.delivery.EmailBackend`) gets one composed message
per request; a template-mode one (:class:`~recsys.delivery.BatchEmailBackend`) gets up to its
``batch_size`` digests in one request, whose single outcome applies to all of them. A
concurrent one (:class:`~recsys.delivery.backends.ConcurrentEmailBackend`, SendGrid's
rendered mode) gets a group of digests, claimed and recorded together, and sends them one
request each, several at once; each digest's outcome is recorded on its own row, in one
statement per table for the group.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    String,
    Table,
    bindparam,
    delete,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from recsys.db.bulk import among
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
from recsys.delivery.backends import ConcurrentEmailBackend
from recsys.delivery.compose import subject_line
from recsys.digests.outbox import claim_many, lease
from recsys.settings import Settings
from recsys.subscribers.links import Keyring, LinkMaker

Clock = Callable[[], datetime]
Backend = EmailBackend | BatchEmailBackend | ConcurrentEmailBackend
Result = SendResult | DeliveryError
SUPPRESSED_REASON = "address is suppressed"
DEFERRED = "deferred: the previous send timed out"
# Most digests a concurrent backend gets in one group (one claim, one outcome write).
MAX_CONCURRENT_GROUP = 100

log = logging.getLogger(__name__)


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

    Rendered backends send one request per digest over a kept-alive connection, a
    concurrent one (SendGrid) several at once for a group of up to
    :data:`MAX_CONCURRENT_GROUP` digests; batch backends one request per ``batch_size``
    digests. ``clock`` is read per group, so each attempt records when its group started.
    """
    size = _group_size(backend, settings)
    ids = sorted(set(digest_ids))
    report = SendReport()
    renewal = _Renewal(db, timedelta(seconds=settings.digest_lease_s), clock)
    for start in range(0, len(ids), size):
        renewal.renew(ids[start:])
        with _collector_paused():
            group = _send_group(db, backend, settings, ids[start : start + size], clock)
        report.outcomes.update(group)
        if any(o.outcome is Outcome.UNKNOWN for o in group.values()):
            # The provider stopped answering in time: sending on would stack one timeout per
            # digest. The rest stay ranked (never claimed) and come back with the retry.
            deferred = SendOutcome(Outcome.RETRY, detail=DEFERRED)
            report.outcomes.update({i: deferred for i in ids[start + size :]})
            break
    return report


def _group_size(backend: Backend, settings: Settings) -> int:
    """Digests claimed (and their outcomes written) together."""
    if isinstance(backend, BatchEmailBackend):
        return backend.batch_size
    if isinstance(backend, ConcurrentEmailBackend):
        # Two commits per group: at 24 digests a group they were a third of the send time.
        return MAX_CONCURRENT_GROUP
    return 1


def _claim_lease(backend: Backend, settings: Settings, n: int) -> timedelta:
    """How long a group's claimed rows are held: the usual lease, and for a concurrent
    group one request timeout more.

    A group stops starting requests at its first unknown outcome, so at most one round of
    its requests runs into the timeout. Holding the rows for every round's timeout (13 x
    10 s for 100 digests on 8 connections) kept a killed worker's group from the sweep for
    over three minutes, past the two minutes recovery is allowed to take. The price: a
    provider answering every request just under the timeout could outlast the lease; the
    sweep then treats those rows as unknown and waits for the event grace before resending.
    """
    lease = timedelta(seconds=settings.digest_lease_s)
    if not isinstance(backend, ConcurrentEmailBackend) or n <= 0:
        return lease
    return lease + timedelta(seconds=backend.timeout_s)


@dataclass
class _Renewal:
    """Renews the lease on a call's remaining digests once half of it has run out.

    Renewing before every message would cost an UPDATE per digest (a rendered-mode chunk
    sends one message each); at half the lease, a slow provider still never lets it lapse.
    """

    db: Database
    lease: timedelta
    clock: Clock
    renewed_at: datetime | None = None

    def renew(self, ids: list[int]) -> None:
        now = self.clock()
        if self.renewed_at is not None and now < self.renewed_at + self.lease / 2:
            return
        with self.db.session() as session:
            lease(session, ids, "ranked", now + self.lease)
        self.renewed_at = now


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one request's worth of work.

    A 1,000-digest batch builds ~35,000 objects (rows, lines, e-mails) that all live until
    the request is answered. With the collector on, they survive its young collections,
    are promoted, and push it into a full walk of the worker's heap every other batch:
    29% of the send CPU when measured. Paused, they are freed by reference counting when
    the batch ends and nothing is walked. Only a caller that found the collector on turns
    it back on, so it is never left off, nor turned on under someone who paused it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _send_group(
    db: Database, backend: Backend, settings: Settings, ids: list[int], clock: Clock
) -> dict[int, SendOutcome]:
    now = clock()
    with db.session() as session:
        until = now + _claim_lease(backend, settings, len(ids))
        claimed = claim_many(
            session, ids, "ranked", "sending", now, attempts=DigestRow.attempts + 1,
            lease_until=until,
        )  # fmt: skip
        emails, suppressed = load_emails(session, settings, claimed, now)
        claim_many(session, suppressed, "sending", "skipped", now, reason=SUPPRESSED_REASON)
        _record_attempts(session, [e.digest_id for e in emails], backend.name, now)
    outcomes = {i: SendOutcome(Outcome.NOT_CLAIMED) for i in ids if i not in claimed}
    outcomes |= {i: SendOutcome(Outcome.SKIPPED, detail=SUPPRESSED_REASON) for i in suppressed}
    if not emails:
        return outcomes
    ids_sent = [e.digest_id for e in emails]
    if isinstance(backend, ConcurrentEmailBackend):
        results = backend.send_many(emails, settings.from_email)
        with db.session() as session:
            return outcomes | _record_each(session, ids_sent, results, clock())
    result = _deliver(backend, settings, emails, now)
    with db.session() as session:
        return outcomes | _record(session, ids_sent, result, clock())


def _deliver(
    backend: EmailBackend | BatchEmailBackend,
    settings: Settings,
    emails: list[DigestEmail],
    now: datetime,
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
    # One INSERT ... SELECT: the attempt numbers never leave the database.
    started = DeliveryAttemptRow.__table__.c.started_at.type
    rows = select(
        DigestRow.id, DigestRow.attempts, literal(backend, String()), literal(now, started)
    ).where(among(session, DigestRow.id, digest_ids))
    session.execute(
        insert(DeliveryAttemptRow).from_select(
            ["digest_id", "attempt", "backend", "started_at"], rows
        )
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
    for digest_id in ids:  # failures are rare: a line each, findable by the digest's id
        log.warning("digest %s %s: %s", digest_id, attempt, result, extra={"digest_id": digest_id})
    wait = result.retry_after_s
    return {i: SendOutcome(outcome, wait, str(result)) for i in ids}


def _record_each(
    session: Session, ids: list[int], results: Sequence[Result | None], now: datetime
) -> dict[int, SendOutcome]:
    """Record each digest's own outcome: one statement per table and kind, not per digest.

    None marks a digest whose request was never started: it goes back to ``ranked`` as if
    it had never been claimed (its attempt row removed, its attempt not counted).
    """
    sent = [(i, r) for i, r in zip(ids, results, strict=True) if isinstance(r, SendResult)]
    failed = [(i, r) for i, r in zip(ids, results, strict=True) if isinstance(r, DeliveryError)]
    unsent = [i for i, r in zip(ids, results, strict=True) if r is None]
    _mark_sent(session, sent, now)
    _mark_failed(session, failed, now)
    _release_unsent(session, unsent, now)
    outcomes = {i: SendOutcome(Outcome.SENT) for i, _ in sent}
    for digest_id, error in failed:
        _, outcome, attempt = _failure_kind(error)
        log.warning("digest %s %s: %s", digest_id, attempt, error, extra={"digest_id": digest_id})
        outcomes[digest_id] = SendOutcome(outcome, error.retry_after_s, str(error))
    outcomes |= {i: SendOutcome(Outcome.RETRY, detail=DEFERRED) for i in unsent}
    return outcomes


# Core tables: an executemany over them is one statement with a row of values per digest
# (the ORM would want a primary key per row). The b_ prefix keeps the values' names apart
# from the columns'.
_DIGESTS: Table = DigestRow.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = DeliveryAttemptRow.__table__  # type: ignore[assignment]
_DIGEST_BY_ID = _DIGESTS.c.id == bindparam("b_id")
_SENDING = _DIGESTS.c.status == "sending"
_OPEN_ATTEMPT = (_ATTEMPTS.c.digest_id == bindparam("b_id")) & _ATTEMPTS.c.finished_at.is_(None)


def _mark_sent(session: Session, sent: list[tuple[int, SendResult]], now: datetime) -> None:
    if not sent:
        return
    rows = [{"b_id": i, "b_provider": r.provider_id} for i, r in sent]
    digests = update(_DIGESTS).where(_DIGEST_BY_ID, _SENDING)
    session.execute(
        digests.values(
            status="sent", updated_at=now, lease_until=None, sent_at=now,
            provider_id=bindparam("b_provider"),
        ),
        rows,
    )  # fmt: skip
    attempts = update(_ATTEMPTS).where(_OPEN_ATTEMPT)
    session.execute(
        attempts.values(outcome="sent", detail=bindparam("b_provider"), finished_at=now), rows
    )


def _mark_failed(session: Session, failed: list[tuple[int, DeliveryError]], now: datetime) -> None:
    if not failed:
        return
    rows = []
    for digest_id, error in failed:
        status, _, attempt = _failure_kind(error)
        rows.append(
            {"b_id": digest_id, "b_status": status, "b_attempt": attempt, "b_why": str(error)}
        )
    digests = update(_DIGESTS).where(_DIGEST_BY_ID, _SENDING)
    session.execute(
        digests.values(
            status=bindparam("b_status"), updated_at=now, lease_until=None,
            reason=bindparam("b_why"),
        ),
        rows,
    )  # fmt: skip
    attempts = update(_ATTEMPTS).where(_OPEN_ATTEMPT)
    session.execute(
        attempts.values(outcome=bindparam("b_attempt"), detail=bindparam("b_why"), finished_at=now),
        rows,
    )


def _release_unsent(session: Session, ids: list[int], now: datetime) -> None:
    """Undo the claim of digests whose request never started: no attempt was made."""
    if not ids:
        return
    session.execute(
        update(DigestRow)
        .where(among(session, DigestRow.id, ids), DigestRow.status == "sending")
        .values(status="ranked", updated_at=now, lease_until=None, attempts=DigestRow.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(DeliveryAttemptRow)
        .where(
            among(session, DeliveryAttemptRow.digest_id, ids),
            DeliveryAttemptRow.finished_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )


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
        .where(
            among(session, DeliveryAttemptRow.digest_id, ids),
            DeliveryAttemptRow.finished_at.is_(None),
        )
        .values(outcome=outcome, detail=detail, finished_at=now)
        .execution_options(synchronize_session=False)
    )


# Building the e-mails ------------------------------------------------------------------------


def load_emails(
    session: Session, settings: Settings, digest_ids: Sequence[int], now: datetime
) -> tuple[list[DigestEmail], list[int]]:
    """The e-mails for ``digest_ids``, and the ids whose address is suppressed (not built).

    Four queries whatever the number of digests, so a 1,000-digest batch costs no more
    round trips than one digest. Each paper is loaded once however many digests list it.
    """
    if not digest_ids:
        return [], []
    pairs = session.execute(
        select(
            DigestRow.id,
            DigestRow.period,
            UserRow.id.label("user_id"),
            UserRow.email,
            UserRow.name,
            UserRow.created_at,
            UserRow.digest_size,
            DigestRow.candidate_mask,
        )
        .join(UserRow, UserRow.id == DigestRow.user_id)
        .where(among(session, DigestRow.id, digest_ids))
        .order_by(DigestRow.id)
    ).all()
    blocked = _suppressed(session, [p.email for p in pairs])
    suppressed = [p.id for p in pairs if p.email in blocked]
    wanted = [p for p in pairs if p.email not in blocked]
    items = _items(session, [p.id for p in wanted])
    expires = now + timedelta(days=settings.link_ttl_days)
    links = LinkMaker(Keyring.from_settings(settings), settings.public_base_url, expires)
    emails = [_email(p, items[p.id], links) for p in wanted]
    return emails, suppressed


def build_email(
    session: Session, settings: Settings, digest_id: int, now: datetime
) -> DigestEmail | None:
    """The e-mail for one digest, or None when its address is suppressed."""
    emails, _ = load_emails(session, settings, [digest_id], now)
    return emails[0] if emails else None


def _suppressed(session: Session, addresses: list[str]) -> set[str]:
    if not addresses:
        return set()
    query = select(SuppressionRow.email).where(among(session, SuppressionRow.email, addresses))
    return set(session.scalars(query).all())


@dataclass(frozen=True, slots=True)
class _Paper:
    id: int
    title: str
    authors: tuple[str, ...]
    abstract: str
    categories: tuple[str, ...]
    published: date | None
    arxiv_id: str | None
    doi: str | None
    pdf_url: str | None


def _items(session: Session, digest_ids: list[int]) -> dict[int, list[tuple[_Paper, str]]]:
    """Each digest's (paper, reason) pairs in slate order."""
    by_digest: dict[int, list[tuple[_Paper, str]]] = defaultdict(list)
    if not digest_ids:
        return by_digest
    rows = session.execute(
        select(DigestItemRow.digest_id, DigestItemRow.paper_id, DigestItemRow.reason)
        .where(among(session, DigestItemRow.digest_id, digest_ids))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    ).all()
    papers = _papers(session, {paper_id for _, paper_id, _ in rows})
    for digest_id, paper_id, reason in rows:
        if paper_id in papers:  # as the inner join it replaces: a paper deleted meanwhile drops
            by_digest[digest_id].append((papers[paper_id], reason))
    return by_digest


def _papers(session: Session, paper_ids: set[int]) -> dict[int, _Paper]:
    # A batch's digests share most of their papers: fetching (and decoding the authors of)
    # each one once, instead of once per digest item, saves ~90% of the rows.
    rows = session.execute(
        select(*_PAPER_COLUMNS).where(among(session, PaperRow.id, sorted(paper_ids)))
    ).all()
    return {row.id: _paper(row) for row in rows}


# Only what a digest shows: the papers' other text columns stay in the database.
_PAPER_COLUMNS = (
    PaperRow.id, PaperRow.title, PaperRow.authors, PaperRow.abstract, PaperRow.categories,
    PaperRow.published, PaperRow.arxiv_id, PaperRow.doi, PaperRow.pdf_url,
)  # fmt: skip


def _paper(row: Any) -> _Paper:
    # arXiv's PDF lives at a fixed address; other sources give theirs or none.
    pdf = row.pdf_url or (f"https://arxiv.org/pdf/{row.arxiv_id}" if row.arxiv_id else None)
    published = row.published.date() if row.published is not None else None
    return _Paper(
        row.id, row.title, tuple(row.authors), row.abstract or "", tuple(row.categories or ()),
        published, row.arxiv_id, row.doi, pdf,
    )  # fmt: skip


def _pool_size(mask: bytes | None) -> int | None:
    """How many new papers the digest was ranked from: the set bits of its candidate mask."""
    return None if mask is None else int.from_bytes(mask, "big").bit_count()


def _email(digest: Any, items: list[tuple[_Paper, str]], links: LinkMaker) -> DigestEmail:
    """``digest`` is a row of :func:`load_emails`'s first query (digest and user columns)."""
    user_id, digest_id = digest.user_id, digest.id
    lines = tuple(
        DigestLine(
            paper_id=paper.id,
            title=paper.title,
            authors=paper.authors,
            reason=reason,
            click_url=links.click(user_id, paper.id, digest_id),
            more_url=links.more(user_id, paper.id, digest_id),
            less_url=links.less(user_id, paper.id, digest_id),
            abstract=paper.abstract,
            categories=paper.categories,
            published=paper.published,
            arxiv_id=paper.arxiv_id,
            doi=paper.doi,
            pdf_url=paper.pdf_url,
        )
        for paper, reason in items
    )
    top = lines[0].title if lines else ""
    return DigestEmail(
        digest_id=digest_id,
        to_email=digest.email,
        to_name=digest.name,
        subject=subject_line(top, len(lines), digest.period),
        period_label=digest.period,
        items=lines,
        unsubscribe_url=links.unsubscribe(user_id, digest.created_at),
        preferences_url=links.preferences(user_id, digest.created_at),
        candidates=_pool_size(digest.candidate_mask),
        requested=digest.digest_size,  # fewer items: a thin day, and the e-mail says so
    )
