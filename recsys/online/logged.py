"""The one reader of the ranking log: logged digests, their pools, propensities and clicks.

A *logged digest* is a sent digest whose ranking was logged (issue 6): its policy
(``variant``, ``ranker_config``, ``model_version``), its candidate pool (the ranking chunk's
paper ids where the digest's mask bit is set), the papers shown with their positions,
propensities and ``explored`` flags, and the clicks attributed to each position
(``recsys.online.analysis.attributed_clicks``: a tracked click within the window). Only
digests whose attribution window has closed are read, so a young digest is not counted as
unclicked.

Everything is streamed in chunks of digest ids (keyset pagination on ``digests.id``): the
memory held is one chunk's rows, whatever the number of digests. It lives in ``recsys`` (not
in the offline ``experiments`` package) because the nightly training guard-rail reads the
same logs as ``paperboy experiment offpolicy``; ``experiments.logs`` exports them as JSONL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from recsys.db.bulk import among
from recsys.db.models import CandidatePoolRow, DigestItemRow, DigestRow, PaperRow, UserRow
from recsys.digests.exploration import unpack_mask
from recsys.digests.scoring import Candidates, UserContext, build_user_context
from recsys.online.analysis import attributed_clicks
from recsys.recommender import PaperBlock
from recsys.training.model import Model

CHUNK = 1000  # digests per query: bounded memory, few round trips
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LoggedDigest:
    """One sent digest as logged, with its attributed clicks (see the module docstring).

    ``pool`` holds the paper ids the user could have been shown, ascending; ``shown`` the
    paper ids in display order, ``propensity`` and ``explored`` per position, ``clicked``
    True where the position's paper was clicked within the window.
    """

    digest_id: int
    user_id: int
    digest_size: int
    ranked_at: datetime  # the ranking instant: the candidate pool's creation time
    sent_at: datetime
    model_version: str | None
    experiment_id: int | None
    variant: str | None
    ranker_config: dict[str, Any]
    pool_id: int
    pool: NDArray[np.int64]
    shown: NDArray[np.int64]
    propensity: NDArray[np.float64]
    explored: NDArray[np.bool_]
    clicked: NDArray[np.bool_]
    # The user's strictness (recsys.recommender.relevance), read now like digest_size.
    strictness: str = "normal"

    @cached_property  # read several times per digest by the off-policy code
    def arm(self) -> str:
        """The logging policy's key: variant (or "default") and its config, as JSON."""
        config = json.dumps(self.ranker_config, sort_keys=True)
        return f"{self.variant or 'default'} {config}"

    def as_record(self) -> dict[str, Any]:
        """The JSONL record of ``export_logs``."""
        return {
            "schema": SCHEMA_VERSION,
            "digest_id": self.digest_id,
            "user_id": self.user_id,
            "digest_size": self.digest_size,
            "ranked_at": self.ranked_at.isoformat(),
            "sent_at": self.sent_at.isoformat(),
            "model_version": self.model_version,
            "experiment_id": self.experiment_id,
            "variant": self.variant,
            "ranker_config": self.ranker_config,
            "pool": self.pool.tolist(),
            "shown": self.shown.tolist(),
            "propensity": self.propensity.tolist(),
            "explored": self.explored.tolist(),
            "clicked": self.clicked.tolist(),
        }


def stream_logged_digests(
    session: Session,
    *,
    now: datetime,
    window: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_size: int = CHUNK,
) -> Iterator[list[LoggedDigest]]:
    """Logged digests sent in ``[since, until)`` whose window closed by ``now``, in chunks.

    Parameters
    ----------
    session : Session
        Only read from.
    now : datetime
        Digests sent after ``now - window`` are still collecting clicks and are left out.
    window : timedelta
        Click attribution window (``PAPERBOY_CLICK_ATTRIBUTION_DAYS``).
    since, until : datetime, optional
        Bounds on ``sent_at``.
    chunk_size : int
        Digests per chunk, ordered by id.
    """
    after = 0
    while True:
        rows = _digest_rows(session, after, (since, until, now - window), chunk_size)
        if not rows:
            return
        after = rows[-1].id
        yield _assemble(session, rows, window)


def logged_arms(
    session: Session,
    *,
    now: datetime,
    window: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, tuple[dict[str, Any], int]]:
    """Each logging policy of the selected digests: arm key -> (ranker config, digest count).

    Read in chunks of bare columns (no items, no pools): the mixture weights the off-policy
    estimates need before the full stream is read.
    """
    # One GROUP BY, not a pass over every digest row (3 s per 100,000 digests, profiled). JSON
    # has no equality in PostgreSQL, so configs group by their text and merge here by their
    # canonical form; arms keep the order of their first digest (the mixture sums in it).
    first = func.min(DigestRow.id)
    query = _logged(
        select(DigestRow.variant, cast(DigestRow.ranker_config, Text), func.count(), first)
        .group_by(DigestRow.variant, cast(DigestRow.ranker_config, Text))
        .order_by(first),
        (since, until, now - window),
    )
    counts: dict[str, tuple[dict[str, Any], int]] = {}
    for variant, text, count, _ in session.connection().execute(query).all():
        config = (json.loads(text) if text is not None else None) or {}
        key = f"{variant or 'default'} {json.dumps(config, sort_keys=True)}"
        seen, total = counts.get(key, (config, 0))
        counts[key] = (seen, total + count)
    return counts


def _digest_rows(
    session: Session,
    after: int,
    bounds: tuple[datetime | None, datetime | None, datetime],
    limit: int,
) -> list[Any]:
    """Up to ``limit`` logged digests with ids above ``after``; ``bounds`` = (since, until,
    closed): sent in ``[since, until)`` and no later than ``closed`` (window over)."""
    query = (
        select(
            DigestRow.id,
            DigestRow.user_id,
            DigestRow.sent_at,
            DigestRow.model_version,
            DigestRow.experiment_id,
            DigestRow.variant,
            DigestRow.ranker_config,
            DigestRow.candidate_pool_id,
            DigestRow.candidate_mask,
            UserRow.digest_size,
            UserRow.strictness,
        )
        .where(DigestRow.id > after)
        .order_by(DigestRow.id)
        .limit(limit)
    )
    return list(session.connection().execute(_logged(query, bounds)).all())


def _logged(query: Any, bounds: tuple[datetime | None, datetime | None, datetime]) -> Any:
    """``query`` cut to the logged digests of ``bounds`` (see :func:`_digest_rows`)."""
    since, until, closed = bounds
    query = (
        query.join(UserRow, UserRow.id == DigestRow.user_id)
        .where(DigestRow.status == "sent")
        .where(DigestRow.candidate_pool_id.is_not(None), DigestRow.sent_at.is_not(None))
        .where(DigestRow.sent_at <= closed)
    )
    if since is not None:
        query = query.where(DigestRow.sent_at >= since)
    if until is not None:
        query = query.where(DigestRow.sent_at < until)
    return query


def _assemble(session: Session, rows: list[Any], window: timedelta) -> list[LoggedDigest]:
    """The chunk's digests with their items, pools and attributed clicks (3 queries).

    Core rows on the session's connection, ``= ANY(:ids)`` on PostgreSQL and numpy slices
    per digest: the ORM's row handling, psycopg re-parsing a 1,000-placeholder ``IN`` and a
    Python list per digest were a quarter of the off-policy report (profiled, 100,000 digests).
    """
    ids = [r.id for r in rows]
    items = _items(session, ids)
    pools = _pools(session, {r.candidate_pool_id for r in rows})
    clicks = attributed_clicks(session, window, digest_ids=ids)
    clicked = np.isin(
        _pair_keys(items.digest_ids, items.paper_ids),
        _pair_keys(np.array([c.digest_id for c in clicks]), np.array([c.paper_id for c in clicks])),
    )
    bounds = np.searchsorted(items.digest_ids, np.array(ids + [ids[-1] + 1]), side="left")
    return [
        _digest(r, items, slice(bounds[i], bounds[i + 1]), pools[r.candidate_pool_id], clicked)
        for i, r in enumerate(rows)
    ]


@dataclass(frozen=True)
class _Items:
    """A chunk's digest items as columns, ordered by digest id then position."""

    digest_ids: NDArray[np.int64]
    paper_ids: NDArray[np.int64]
    propensity: NDArray[np.float64]
    explored: NDArray[np.bool_]


def _items(session: Session, ids: list[int]) -> _Items:
    query = (
        select(
            DigestItemRow.digest_id,
            DigestItemRow.paper_id,
            DigestItemRow.propensity,
            DigestItemRow.explored,
        )
        .where(among(session, DigestItemRow.digest_id, ids))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    )
    columns = list(zip(*session.connection().execute(query).all(), strict=True)) or [()] * 4
    return _Items(
        np.array(columns[0], dtype=np.int64),
        np.array(columns[1], dtype=np.int64),
        np.array(columns[2], dtype=np.float64),
        np.array(columns[3], dtype=bool),
    )


def _pair_keys(digest_ids: NDArray[np.int64], paper_ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """One int64 per (digest, paper): ids below 2**31 each, as the columns' types allow."""
    return (np.asarray(digest_ids, dtype=np.int64) << 32) | np.asarray(paper_ids, dtype=np.int64)


def _pools(session: Session, pool_ids: set[int]) -> dict[int, tuple[NDArray[np.int64], datetime]]:
    rows = (
        session.connection()
        .execute(
            select(
                CandidatePoolRow.id, CandidatePoolRow.paper_ids, CandidatePoolRow.created_at
            ).where(among(session, CandidatePoolRow.id, sorted(pool_ids)))
        )
        .all()
    )
    return {r.id: (np.asarray(r.paper_ids, dtype=np.int64), aware(r.created_at)) for r in rows}


def _digest(
    row: Any,
    items: _Items,
    at: slice,
    pool: tuple[NDArray[np.int64], datetime],
    clicked: NDArray[np.bool_],
) -> LoggedDigest:
    ids, ranked_at = pool
    return LoggedDigest(
        digest_id=row.id,
        user_id=row.user_id,
        digest_size=row.digest_size,
        strictness=row.strictness,
        ranked_at=ranked_at,
        sent_at=aware(row.sent_at),
        model_version=row.model_version,
        experiment_id=row.experiment_id,
        variant=row.variant,
        ranker_config=dict(row.ranker_config or {}),
        pool_id=row.candidate_pool_id,
        pool=ids[unpack_mask(row.candidate_mask, len(ids))],
        shown=items.paper_ids[at],
        propensity=items.propensity[at],
        explored=items.explored[at],
        clicked=clicked[at],
    )


def aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def candidates_of(
    session: Session, model: Model, paper_ids: NDArray[np.int64], at: datetime
) -> Candidates:
    """The candidate block of a re-ranking: ``paper_ids`` (ascending) with ages at ``at``."""
    rows = {
        r.id: r
        for r in session.execute(
            select(
                PaperRow.id,
                PaperRow.published,
                PaperRow.created_at,
                PaperRow.authors,
                PaperRow.categories,
            ).where(among(session, PaperRow.id, paper_ids.tolist()))
        ).all()
    }
    ordered = [rows[int(pid)] for pid in paper_ids]
    ages = [
        max((at - aware(r.published or r.created_at)).total_seconds(), 0) / 86400 for r in ordered
    ]
    block = PaperBlock(
        paper_ids=paper_ids,
        embeddings=model.paper_vectors(session, paper_ids),
        age_days=np.array(ages, dtype=np.float32),
    )
    return Candidates(
        block,
        [""] * len(ordered),  # titles only feed reasons, which a re-ranking does not write
        [aware(r.created_at) for r in ordered],
        [list(r.authors or []) for r in ordered],
        [list(r.categories or []) for r in ordered],
    )


def context_as_of(session: Session, model: Model, user_ids: list[int], at: datetime) -> UserContext:
    """Each user's block as the scorer built it at ``at``: only events before ``at`` count.

    The latest events of a logged digest's reader include the clicks on that very digest: a
    target ranker rebuilt from them would favour what the reader went on to click, and every
    estimate would be biased upwards. (Interests have no history, so today's are used.)
    """
    return build_user_context(session, model, user_ids, at, before=at)
