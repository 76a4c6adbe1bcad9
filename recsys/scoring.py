"""Rank planned digests: build user and paper blocks from the database, score, pick top-k.

The database work (who are these users, what did they do, which papers are new to them)
happens here; the scoring itself is the pure recommender and ranking code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, DigestRow, EventRow, InterestRow, PaperRow, UserRow
from recsys.digests import claim_many
from recsys.model import Model
from recsys.ranking import MIN_RELEVANCE, top_k
from recsys.recommender import ContentProfile, PaperBlock, UserBlock
from recsys.subscribers import EVENT_WEIGHTS

MAX_EVENTS_PER_USER = 200  # the latest events describe a user well enough, and bound the work
SKIP_REASON = "nothing new cleared your relevance bar today"
_SENT_LIKE = ("sending", "sent", "unknown")


@dataclass(frozen=True)
class UserContext:
    """What the explanations need besides vectors: titles of history papers, interest labels."""

    block: UserBlock
    history_ids: NDArray[np.int64]  # paper id of each history row
    history_titles: list[str]
    interest_labels: list[str]


@dataclass(frozen=True)
class Candidates:
    block: PaperBlock
    titles: list[str]
    created_at: list[datetime]


def rank_digests(
    session: Session,
    digest_ids: Sequence[int],
    model: Model,
    now: datetime,
    *,
    lookback: timedelta,
    min_score: float = MIN_RELEVANCE,
) -> list[int]:
    """Rank every still-``planned`` digest in ``digest_ids``; return the ids now ``ranked``."""
    pairs = _planned(session, digest_ids)
    if not pairs:
        return []
    users = [user for _, user in pairs]
    since = _since_planned(session, pairs, now, lookback)
    candidates = _candidates(session, model, min(since.values()), now)
    context = build_user_context(session, model, [u.id for u in users], now)
    exclude = _exclusions(session, users, candidates, since)
    k = max(u.digest_size for u in users)
    scores = model.component.score(context.block, candidates.block)
    cols, best = top_k(
        scores, k, exclude=exclude, min_score=min_score, tie_break=-candidates.block.age_days
    )
    picks = {
        digest.id: (row, _picked(cols[row], best[row], user.digest_size))
        for row, (digest, user) in enumerate(pairs)
    }
    # One conditional UPDATE per outcome for the whole chunk: ids another worker already
    # moved are simply missing from what comes back, exactly as with a single claim.
    empty = [d for d, (_, picked) in picks.items() if not picked]
    claim_many(session, empty, "planned", "skipped", now, reason=SKIP_REASON)
    full = [d for d, (_, picked) in picks.items() if picked]
    ranked = claim_many(session, full, "planned", "ranked", now, model_version=model.version)
    _insert_items(session, {d: picks[d] for d in ranked}, context, candidates, model)
    return ranked


def _picked(
    cols: NDArray[np.int32], best: NDArray[np.float32], size: int
) -> list[tuple[int, float]]:
    """The user's (column, score) pairs from a top-k row, padding dropped, cut to their size."""
    return [(int(c), float(s)) for c, s in zip(cols, best, strict=True) if c >= 0][:size]


def _planned(session: Session, digest_ids: Sequence[int]) -> list[tuple[DigestRow, UserRow]]:
    query = (
        select(DigestRow, UserRow)
        .join(UserRow, UserRow.id == DigestRow.user_id)
        .where(DigestRow.id.in_(list(digest_ids)), DigestRow.status == "planned")
        .order_by(DigestRow.id)
    )
    return [(d, u) for d, u in session.execute(query).all()]


def _since_planned(
    session: Session, pairs: Sequence[tuple[DigestRow, UserRow]], now: datetime, lookback: timedelta
) -> dict[int, datetime]:
    """Start of each user's paper window: the digest's ``covers_from``, set when it was planned
    (the previous digest, capped, so a catch-up covers the gap once). Rows planned before that
    column existed fall back to the last sent digest, floored at ``lookback``."""
    since = {u.id: d.covers_from for d, u in pairs if d.covers_from is not None}
    legacy = [u for d, u in pairs if d.covers_from is None]
    if legacy:
        since.update(_since(session, legacy, now, lookback))
    return since


def _since(
    session: Session, users: Sequence[UserRow], now: datetime, lookback: timedelta
) -> dict[int, datetime]:
    """Papers are new to a user when ingested after their last sent digest (or the lookback)."""
    floor = now - lookback
    rows = session.execute(
        select(DigestRow.user_id, func.max(DigestRow.sent_at))
        .where(DigestRow.user_id.in_([u.id for u in users]), DigestRow.sent_at.is_not(None))
        .group_by(DigestRow.user_id)
    ).all()
    last: dict[int, datetime] = {uid: sent for uid, sent in rows if sent is not None}
    return {u.id: max(floor, last.get(u.id, floor)) for u in users}


def _candidates(session: Session, model: Model, since: datetime, now: datetime) -> Candidates:
    rows = session.execute(
        select(PaperRow.id, PaperRow.title, PaperRow.published, PaperRow.created_at)
        .where(PaperRow.created_at >= since)
        .order_by(PaperRow.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    ages = np.array(
        [max((now - (r.published or r.created_at)).total_seconds(), 0) / 86400 for r in rows],
        dtype=np.float32,
    )
    block = PaperBlock(paper_ids=ids, embeddings=model.paper_vectors(session, ids), age_days=ages)
    return Candidates(block, [r.title for r in rows], [r.created_at for r in rows])


def build_user_context(
    session: Session, model: Model, user_ids: Sequence[int], now: datetime
) -> UserContext:
    """Rebuild each user's block from their latest events and interests (no retraining)."""
    row_of = {uid: row for row, uid in enumerate(user_ids)}
    events = _latest_events(session, user_ids)
    hist_ids = sorted({paper_id for _, paper_id, _, _ in events})
    hist_row = {pid: i for i, pid in enumerate(hist_ids)}
    hist = np.array(hist_ids, dtype=np.int64)
    interests = session.execute(
        select(InterestRow.user_id, InterestRow.value)
        .where(InterestRow.user_id.in_(list(user_ids)))
        .order_by(InterestRow.id)
    ).all()
    labels = [value for _, value in interests]
    block = UserBlock(
        user_ids=np.array(user_ids, dtype=np.int64),
        history_embeddings=model.paper_vectors(session, hist),
        event_user=np.array([row_of[e[0]] for e in events], dtype=np.int32),
        event_item=np.array([hist_row[e[1]] for e in events], dtype=np.int32),
        event_weight=np.array([EVENT_WEIGHTS[e[2]] for e in events], dtype=np.float32),
        event_age_days=np.array(
            [max((now - e[3]).total_seconds(), 0) / 86400 for e in events], dtype=np.float32
        ),
        interest_embeddings=_embed_labels(model, labels),
        interest_user=np.array([row_of[uid] for uid, _ in interests], dtype=np.int32),
    )
    titles = _titles(session, hist_ids)
    return UserContext(block=block, history_ids=hist, history_titles=titles, interest_labels=labels)


def _embed_labels(model: Model, labels: list[str]) -> NDArray[np.float32]:
    if not labels:
        return np.zeros((0, model.embedder.dim), dtype=np.float32)
    return model.embedder.transform(labels)


def _titles(session: Session, paper_ids: list[int]) -> list[str]:
    rows = dict(
        session.execute(select(PaperRow.id, PaperRow.title).where(PaperRow.id.in_(paper_ids))).all()
    )
    return [rows[pid] for pid in paper_ids]


def _latest_events(
    session: Session, user_ids: Sequence[int]
) -> list[tuple[int, int, str, datetime]]:
    rows = session.execute(
        select(EventRow.user_id, EventRow.paper_id, EventRow.kind, EventRow.created_at)
        .where(EventRow.user_id.in_(list(user_ids)), EventRow.kind.in_(list(EVENT_WEIGHTS)))
        .where(EventRow.suspect.is_(False))  # link scanners' clicks are kept, never counted
        .order_by(EventRow.created_at.desc(), EventRow.id.desc())
    ).all()
    kept: dict[int, int] = defaultdict(int)
    out = []
    for user_id, paper_id, kind, created_at in rows:
        if kept[user_id] < MAX_EVENTS_PER_USER:
            kept[user_id] += 1
            out.append((user_id, paper_id, kind, created_at))
    return out


def _exclusions(
    session: Session, users: Sequence[UserRow], cands: Candidates, since: dict[int, datetime]
) -> NDArray[np.bool_]:
    """True where a paper must not be shown: too old for the user, already seen or sent."""
    col_of = {int(pid): col for col, pid in enumerate(cands.block.paper_ids)}
    created = np.array([c.timestamp() for c in cands.created_at], dtype=np.float64)
    mask = np.zeros((len(users), len(col_of)), dtype=bool)
    row_of = {u.id: row for row, u in enumerate(users)}
    for user in users:
        mask[row_of[user.id]] = created < since[user.id].timestamp()
    for user_id, paper_id in _seen_pairs(session, list(row_of)):
        if paper_id in col_of:
            mask[row_of[user_id], col_of[paper_id]] = True
    return mask


def _seen_pairs(session: Session, user_ids: list[int]) -> list[tuple[int, int]]:
    sent = (
        select(DigestRow.user_id, DigestItemRow.paper_id)
        .join(DigestItemRow, DigestItemRow.digest_id == DigestRow.id)
        .where(DigestRow.user_id.in_(user_ids), DigestRow.status.in_(_SENT_LIKE))
    )
    touched = select(EventRow.user_id, EventRow.paper_id).where(EventRow.user_id.in_(user_ids))
    return [(u, p) for u, p in session.execute(sent.union(touched)).all()]


def _explainer(model: Model) -> ContentProfile:
    """Reasons come from content similarity, whichever component ranked the papers."""
    component = model.component
    return component if isinstance(component, ContentProfile) else ContentProfile()


def _insert_items(
    session: Session,
    picks: dict[int, tuple[int, list[tuple[int, float]]]],
    context: UserContext,
    cands: Candidates,
    model: Model,
) -> None:
    """Explain and insert every claimed digest's items in one multi-row insert."""
    pairs = [(d, row, pos, col, score) for d, (row, picked) in picks.items()
             for pos, (col, score) in enumerate(picked)]  # fmt: skip
    if not pairs:
        return
    reasons = _explainer(model).explain(
        context.block,
        cands.block,
        np.array([p[1] for p in pairs], dtype=np.int32),
        np.array([p[3] for p in pairs], dtype=np.int32),
        history_titles=context.history_titles,
        interest_labels=context.interest_labels,
    )
    rows = [
        {
            "digest_id": d,
            "paper_id": int(cands.block.paper_ids[col]),
            "position": pos,
            "score": score,
            "reason": reason,
        }
        for (d, _, pos, col, score), reason in zip(pairs, reasons, strict=True)
    ]
    session.execute(insert(DigestItemRow), rows)
