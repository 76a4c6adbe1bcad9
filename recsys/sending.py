"""Send one ranked digest: claim it, compose the e-mail, hand it to the backend, record.

The claim (``ranked -> sending``) is committed before the backend is called, so the attempt
is on record even if this process dies mid-send; such a row stays ``sending`` for the sweep
to reconcile instead of being sent blindly a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, DigestRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.delivery import DeliveryError, DigestEmail, DigestLine, EmailBackend, compose
from recsys.digests import claim
from recsys.links import LinkMaker
from recsys.settings import Settings
from recsys.subscribers import is_suppressed


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


def send_digest(
    db: Database, backend: EmailBackend, settings: Settings, digest_id: int, now: datetime
) -> SendOutcome:
    """Deliver digest ``digest_id`` once; report what happened (see ``Outcome``)."""
    with db.session() as session:
        if not claim(session, digest_id, "ranked", "sending", now, attempts=DigestRow.attempts + 1):
            return SendOutcome(Outcome.NOT_CLAIMED)
        email = build_email(session, settings, digest_id, now)
        if email is None:
            claim(session, digest_id, "sending", "skipped", now, reason="address is suppressed")
            return SendOutcome(Outcome.SKIPPED)
    message = compose(email, settings.from_email)
    try:
        result = backend.send(message, digest_id=digest_id)
    except DeliveryError as exc:
        return _record_failure(db, digest_id, exc, now)
    with db.session() as session:
        claim(
            session, digest_id, "sending", "sent", now, provider_id=result.provider_id, sent_at=now
        )
    return SendOutcome(Outcome.SENT)


def _record_failure(db: Database, digest_id: int, exc: DeliveryError, now: datetime) -> SendOutcome:
    with db.session() as session:
        if exc.unknown:
            # The provider may have accepted it: never resend blindly; the sweep decides.
            claim(session, digest_id, "sending", "unknown", now, reason=str(exc))
            return SendOutcome(Outcome.UNKNOWN, detail=str(exc))
        if exc.transient:
            claim(session, digest_id, "sending", "ranked", now, reason=str(exc))
            return SendOutcome(Outcome.RETRY, retry_after_s=exc.retry_after_s, detail=str(exc))
        claim(session, digest_id, "sending", "failed", now, reason=str(exc))
        return SendOutcome(Outcome.FAILED, detail=str(exc))


def build_email(
    session: Session, settings: Settings, digest_id: int, now: datetime
) -> DigestEmail | None:
    """The e-mail for a digest, or None when its address is suppressed."""
    digest = session.get(DigestRow, digest_id)
    assert digest is not None  # claimed above, in the same transaction
    user = session.get(UserRow, digest.user_id)
    assert user is not None
    if is_suppressed(session, user.email):
        return None
    links = LinkMaker(
        settings.secret_key, settings.public_base_url, now + timedelta(days=settings.link_ttl_days)
    )
    items = session.execute(
        select(DigestItemRow, PaperRow)
        .join(PaperRow, PaperRow.id == DigestItemRow.paper_id)
        .where(DigestItemRow.digest_id == digest_id)
        .order_by(DigestItemRow.position)
    ).all()
    lines = tuple(
        DigestLine(
            paper_id=paper.id,
            title=paper.title,
            authors=tuple(paper.authors),
            reason=item.reason,
            click_url=links.click(user.id, paper.id, digest_id),
            more_url=links.more(user.id, paper.id, digest_id),
            less_url=links.less(user.id, paper.id, digest_id),
        )
        for item, paper in items
    )
    n = len(lines)
    return DigestEmail(
        digest_id=digest_id,
        to_email=user.email,
        to_name=user.name,
        subject=f"Your Paperboy digest: {n} new paper{'s' if n != 1 else ''} for {digest.period}",
        period_label=digest.period,
        items=lines,
        unsubscribe_url=links.unsubscribe(user.id),
    )
