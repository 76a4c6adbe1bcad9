"""Preview a subscriber's next digest: rank it exactly as the scorer would, store nothing.

The preferences page shows it, so a subscriber who edits their interests sees the effect at
once instead of waiting for tomorrow's e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, DigestRow, PaperRow, UserRow

# The scorer's own ranking, so a preview never drifts from the real one.
from recsys.digests.scoring import SKIP_REASON, Ranking, explain, rank_users
from recsys.online.experiments import RankingDefaults, arms_for
from recsys.training.model import Model

NO_MODEL = "no model is trained yet, so there is nothing to rank"
NO_PAPERS = "no new papers have arrived since your last digest"


@dataclass(frozen=True)
class PreviewItem:
    """One paper of a previewed digest, with the reason the e-mail would give."""

    paper_id: int
    title: str
    url: str
    score: float
    reason: str


@dataclass(frozen=True)
class Preview:
    """The ranked papers, best first; ``note`` says why there are none."""

    items: tuple[PreviewItem, ...]
    note: str | None = None


def preview_digest(
    session: Session,
    model: Model | None,
    user_id: int,
    now: datetime,
    *,
    lookback: timedelta,
    min_score: float | None = None,
    defaults: RankingDefaults = RankingDefaults(),  # noqa: B008 - frozen, so safe to share
) -> Preview:
    """Rank ``user_id``'s next digest at ``now`` without writing anything.

    The user's experiment arm applies (its relevance bar and weights), but not its random
    part: exploration slots and the uniform holdout are drawn when the digest is really
    ranked, so the preview shows the ranked list those slots would be taken from.

    Parameters
    ----------
    session : Session
        Only read from.
    model : Model or None
        The active model; None (before the first training) gives an empty preview.
    user_id : int
        The subscriber; ``KeyError`` if there is none.
    now : datetime
        The moment to rank for (aware UTC).
    lookback, min_score, defaults
        As for :func:`recsys.digests.scoring.rank_digests`.
    """
    user = session.get(UserRow, user_id)
    if user is None:
        raise KeyError(f"no user {user_id}")
    if model is None:
        return Preview((), NO_MODEL)
    since = {user.id: window_start(session, user.id, now, lookback)}
    (arm,) = arms_for(session, [user.id], defaults)
    ranked = replace(arm, config=replace(arm.config, explore_slots=0, uniform=False))
    ranking = rank_users(session, model, [user], since, now, arms=[ranked], min_score=min_score)
    if not len(ranking.candidates.block.paper_ids):
        return Preview((), NO_PAPERS)
    if not len(ranking.digests[0].slate):
        return Preview((), SKIP_REASON)
    return Preview(_items(session, model, ranking))


def window_start(session: Session, user_id: int, now: datetime, lookback: timedelta) -> datetime:
    """Papers are new to a user when ingested after their last sent digest (or the lookback)."""
    last = session.scalar(
        select(func.max(DigestRow.sent_at)).where(
            DigestRow.user_id == user_id, DigestRow.sent_at.is_not(None)
        )
    )
    floor = now - lookback
    return floor if last is None else max(floor, last)


def _items(session: Session, model: Model, ranking: Ranking) -> tuple[PreviewItem, ...]:
    digest, cands = ranking.digests[0], ranking.candidates
    (reasons,) = explain(session, model, ranking, [0])
    ids = [int(cands.block.paper_ids[c]) for c in digest.slate.cols]
    urls = dict(
        session.execute(select(PaperRow.id, PaperRow.url).where(PaperRow.id.in_(ids))).all()
    )
    return tuple(
        PreviewItem(pid, cands.titles[col], urls[pid], float(score), reason)
        for pid, col, score, reason in zip(
            ids, digest.slate.cols, digest.scores, reasons, strict=True
        )
    )


@dataclass(frozen=True)
class SentDigest:
    """The papers of a digest already sent, with the reason each was given."""

    period: str
    items: tuple[PreviewItem, ...]


def skipped_since_last_sent(session: Session, user_id: int) -> str | None:
    """The period of the latest digest skipped because nothing cleared the user's bar, if it
    came after the last one sent (an older skip is no news); else None."""
    last_sent = select(func.max(DigestRow.sent_at)).where(DigestRow.user_id == user_id)
    skipped = session.execute(
        select(DigestRow.period, DigestRow.updated_at)
        .where(DigestRow.user_id == user_id, DigestRow.status == "skipped")
        .where(DigestRow.reason == SKIP_REASON)
        .order_by(DigestRow.updated_at.desc(), DigestRow.id.desc())
        .limit(1)
    ).first()
    sent = session.scalar(last_sent)
    if skipped is None or (sent is not None and sent >= skipped.updated_at):
        return None
    return str(skipped.period)


def last_sent_digest(session: Session, user_id: int) -> SentDigest | None:
    """The user's most recently sent digest, or None before the first one."""
    digest = session.scalar(
        select(DigestRow)
        .where(DigestRow.user_id == user_id, DigestRow.sent_at.is_not(None))
        .order_by(DigestRow.sent_at.desc(), DigestRow.id.desc())
        .limit(1)
    )
    if digest is None:
        return None
    rows = session.execute(
        select(DigestItemRow, PaperRow.title, PaperRow.url)
        .join(PaperRow, PaperRow.id == DigestItemRow.paper_id)
        .where(DigestItemRow.digest_id == digest.id)
        .order_by(DigestItemRow.position)
    ).all()
    items = tuple(
        PreviewItem(item.paper_id, title, url, item.score, item.reason) for item, title, url in rows
    )
    return SentDigest(digest.period, items)
