"""Reading the ranking log: click attribution, candidate pools, and click-through per arm.

Attribution happens here, at analysis time, never on the click path: a click counts for a
digest and a position when the event carries that digest's id (tracked links do), names a
paper the digest showed, is a real ``click`` (not ``suspect``), and happened within
``window`` after the digest was sent. Clicking the same paper twice counts once.

A digest is analysed once its window has closed (``sent_at + window <= now``); digests still
inside it are reported as ``pending``, so a young arm is not biased towards fewer clicks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recsys.db.models import CandidatePoolRow, DigestItemRow, DigestRow, EventRow
from recsys.digests.exploration import unpack_mask
from recsys.online.experiments import experiment_variants, get_experiment

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Click:
    """One attributed click: the digest, the position it was shown at, and when."""

    digest_id: int
    position: int
    paper_id: int
    clicked_at: datetime


@dataclass(frozen=True)
class _Sent:
    digest_id: int
    user_id: int
    variant: str


def attributed_clicks(
    session: Session,
    window: timedelta,
    *,
    experiment_id: int | None = None,
    digest_ids: Sequence[int] | None = None,
) -> list[Click]:
    """Clicks attributed to a shown (digest, position), first click of each only.

    Parameters
    ----------
    session : Session
        Only read from.
    window : timedelta
        A click counts when ``sent_at <= clicked_at < sent_at + window``.
    experiment_id : int, optional
        Only digests ranked by this experiment's arms.
    digest_ids : sequence of int, optional
        Only these digests (a chunk of a streamed read).

    Returns
    -------
    list of Click
        Ordered by digest and position.
    """
    query = (
        select(DigestItemRow.digest_id, DigestItemRow.position, DigestItemRow.paper_id)
        .add_columns(DigestRow.sent_at, func.min(EventRow.created_at))
        .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
        .join(
            EventRow,
            (EventRow.digest_id == DigestItemRow.digest_id)
            & (EventRow.paper_id == DigestItemRow.paper_id),
        )
        .where(EventRow.kind == "click", EventRow.suspect.is_(False))
        .where(DigestRow.sent_at.is_not(None), EventRow.created_at >= DigestRow.sent_at)
        .group_by(DigestItemRow.digest_id, DigestItemRow.position, DigestItemRow.paper_id)
        .group_by(DigestRow.sent_at)
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    )
    if experiment_id is not None:
        query = query.where(DigestRow.experiment_id == experiment_id)
    if digest_ids is not None:
        query = query.where(DigestItemRow.digest_id.in_(list(digest_ids)))
    # The window test is done here, not in SQL: interval arithmetic differs per backend, and
    # the rows left after the join are the clicks, a small fraction of the items shown.
    return [
        Click(digest_id, position, paper_id, first)
        for digest_id, position, paper_id, sent_at, first in session.execute(query).all()
        if _aware(first) < _aware(sent_at) + window
    ]


def candidate_pool(session: Session, digest_id: int) -> NDArray[np.int64]:
    """The paper ids the digest's user could have been shown when it was ranked.

    Raises
    ------
    KeyError
        If the digest does not exist or was ranked before pools were logged.
    """
    row = session.execute(
        select(DigestRow.candidate_mask, CandidatePoolRow.paper_ids)
        .join(CandidatePoolRow, CandidatePoolRow.id == DigestRow.candidate_pool_id)
        .where(DigestRow.id == digest_id)
    ).one_or_none()
    if row is None or row.candidate_mask is None:
        raise KeyError(f"digest {digest_id} has no logged candidate pool")
    ids = np.asarray(row.paper_ids, dtype=np.int64)
    return ids[unpack_mask(row.candidate_mask, len(ids))]


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ratio_interval(
    clicks: NDArray[np.float64],
    shown: NDArray[np.float64],
    rng: np.random.Generator,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap over users of ``sum(clicks) / sum(shown)``.

    Users, not items, are resampled: one reader's clicks are correlated, so an item-level
    interval would be too narrow. (0, 1) when there are no users.
    """
    if len(clicks) == 0:
        return 0.0, 1.0
    picks = rng.integers(0, len(clicks), size=(samples, len(clicks)))
    ratios = clicks[picks].sum(axis=1) / shown[picks].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def online_report(
    session: Session, name: str, now: datetime, window: timedelta, *, seed: int = 0
) -> dict[str, Any]:
    """Click-through per arm of experiment ``name``, with 95% intervals.

    Per arm: ``users`` and ``digests`` logged (exposures), ``skipped`` (nothing cleared the
    bar), ``pending`` (sent, window still open), ``analysed`` digests, ``shown`` items and
    ``clicked`` items in them; ``ctr = clicked / shown`` with a Wilson interval (items as
    independent trials) and a bootstrap over users (``ctr_bootstrap``, the one to trust when
    readers differ); ``digest_ctr``: the share of analysed digests with a click, Wilson.

    Raises
    ------
    ExperimentError
        If there is no experiment called ``name``.
    """
    experiment = get_experiment(session, name)
    logged = session.execute(
        select(DigestRow.id, DigestRow.user_id, DigestRow.variant, DigestRow.status)
        .add_columns(DigestRow.sent_at)
        .where(DigestRow.experiment_id == experiment.id)
        .order_by(DigestRow.id)
    ).all()
    analysed = [
        _Sent(r.id, r.user_id, r.variant)
        for r in logged
        if r.sent_at is not None and _aware(r.sent_at) + window <= now
    ]
    shown = _items_shown(session, experiment.id)
    clicked = _clicks_per_digest(attributed_clicks(session, window, experiment_id=experiment.id))
    rng = np.random.default_rng(seed)
    arms = {}
    for variant in experiment_variants(experiment):
        mine = [r for r in logged if r.variant == variant.name]
        sent = [d for d in analysed if d.variant == variant.name]
        arms[variant.name] = {
            "allocation": variant.allocation,
            "config": variant.config.as_dict(),
            "users": len({r.user_id for r in mine}),
            "digests": len(mine),
            "skipped": sum(r.status == "skipped" for r in mine),
            "pending": sum(r.sent_at is not None for r in mine) - len(sent),
            **_rates(sent, shown, clicked, rng),
        }
    return {
        "experiment": experiment.name,
        "status": experiment.status,
        "window_days": window / timedelta(days=1),
        "now": now.isoformat(),
        "arms": arms,
    }


def _rates(
    sent: list[_Sent], shown: dict[int, int], clicked: dict[int, int], rng: np.random.Generator
) -> dict[str, Any]:
    """CTR of one arm's analysed digests, with its intervals."""
    n_shown = sum(shown.get(d.digest_id, 0) for d in sent)
    n_clicked = sum(clicked.get(d.digest_id, 0) for d in sent)
    with_click = sum(clicked.get(d.digest_id, 0) > 0 for d in sent)
    per_user_clicks: dict[int, float] = defaultdict(float)
    per_user_shown: dict[int, float] = defaultdict(float)
    for d in sent:
        per_user_clicks[d.user_id] += clicked.get(d.digest_id, 0)
        per_user_shown[d.user_id] += shown.get(d.digest_id, 0)
    users = sorted(per_user_shown)
    return {
        "analysed": len(sent),
        "shown": n_shown,
        "clicked": n_clicked,
        "ctr": n_clicked / n_shown if n_shown else None,
        "ctr_wilson": wilson_interval(n_clicked, n_shown),
        "ctr_bootstrap": bootstrap_ratio_interval(
            np.array([per_user_clicks[u] for u in users]),
            np.array([per_user_shown[u] for u in users]),
            rng,
        ),
        "digest_ctr": with_click / len(sent) if sent else None,
        "digest_ctr_wilson": wilson_interval(with_click, len(sent)),
    }


def _items_shown(session: Session, experiment_id: int) -> dict[int, int]:
    rows = session.execute(
        select(DigestItemRow.digest_id, func.count())
        .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
        .where(DigestRow.experiment_id == experiment_id)
        .group_by(DigestItemRow.digest_id)
    ).all()
    return {digest_id: int(count) for digest_id, count in rows}


def _clicks_per_digest(clicks: list[Click]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for click in clicks:
        counts[click.digest_id] += 1
    return counts


def _aware(when: datetime) -> datetime:
    """UTC-aware, whichever way the backend handed the value back (aggregates included)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
