"""Reading the ranking log: click attribution, candidate pools, and click-through per arm.

Attribution happens here, at analysis time, never on the click path: a click counts for a
digest and a position when the event carries that digest's id (tracked links do), names a
paper the digest showed, is a real ``click`` (not ``suspect``), and happened within
``window`` after the digest was sent. Clicking the same paper twice counts once.

A digest is analysed once its window has closed (``sent_at + window <= now``); digests still
inside it are reported as ``pending``, so a young arm is not biased towards fewer clicks.

Beside that closed-window table, :func:`online_report` gives the *interim* result (every sent
digest, with the clicks it has had so far, read with always-valid intervals from
``recsys.online.sequential`` so it may be looked at every day) and, once the plan's horizon
is reached and those digests' windows have closed, the *final* fixed-horizon result.
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

from recsys.db.bulk import among
from recsys.db.models import CandidatePoolRow, DigestItemRow, DigestRow, EventRow
from recsys.digests.exploration import unpack_mask
from recsys.online.assignment import ExperimentError
from recsys.online.experiments import (
    INTERLEAVE,
    ExperimentPlan,
    experiment_variants,
    get_experiment,
)
from recsys.online.sequential import (
    RatioMoments,
    arm_sequence,
    difference_fixed,
    difference_sequence,
    fixed_radius,
    ratio_and_variance,
)

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_SAMPLES = 2000
# The always-valid intervals use a running variance estimate: with fewer digests than this
# in an arm it is too noisy to trust, so no stop is called before (see sequential.py).
MIN_DECISION_DIGESTS = 100
# Where a plan gives no digest horizon, the intervals are tuned to be tightest here.
DEFAULT_PLANNED_DIGESTS = 1000


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
        query = query.where(among(session, DigestItemRow.digest_id, list(digest_ids)))
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
    session: Session,
    name: str,
    now: datetime,
    window: timedelta,
    *,
    seed: int = 0,
    plan: ExperimentPlan | None = None,
) -> dict[str, Any]:
    """Click-through per arm of experiment ``name``: closed windows, interim and final.

    Per arm: ``users`` and ``digests`` logged (exposures), ``skipped`` (nothing cleared the
    bar), ``pending`` (sent, window still open), ``analysed`` digests, ``shown`` items and
    ``clicked`` items in them; ``ctr = clicked / shown`` with a Wilson interval (items as
    independent trials) and a bootstrap over users (``ctr_bootstrap``, the one to trust when
    readers differ); ``digest_ctr``: the share of analysed digests with a click, Wilson.

    ``interim`` and ``final`` are :func:`sequential_result` under ``plan`` (default: alpha
    0.05, the first variant as control, no horizon).

    Raises
    ------
    ExperimentError
        If there is no experiment called ``name``, or it is an interleaved one.
    """
    experiment = get_experiment(session, name)
    if experiment.kind == INTERLEAVE:  # one list made by two rankers: no arms to compare
        raise ExperimentError(
            f"experiment {name!r} is interleaved; read it with "
            f"`paperboy experiment interleave-report --name {name}`"
        )
    logged = session.execute(
        select(DigestRow.id, DigestRow.user_id, DigestRow.variant, DigestRow.status)
        .add_columns(DigestRow.sent_at)
        .where(DigestRow.experiment_id == experiment.id, DigestRow.created_at <= now)
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
    variants = experiment_variants(experiment)
    plan = plan or ExperimentPlan.of_row(experiment, variants)
    if [v.name for v in plan.variants] != [v.name for v in variants]:
        raise ExperimentError(
            f"the plan's variants {[v.name for v in plan.variants]} are not the experiment's "
            f"{[v.name for v in variants]}"
        )
    log = _sent_log(session, experiment.id, now, window)
    return {
        "experiment": experiment.name,
        "status": experiment.status,
        "window_days": window / timedelta(days=1),
        "now": now.isoformat(),
        "arms": arms,
        **sequential_result(log, plan, now, window),
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


# --- interim (always-valid) and final (fixed-horizon) results --------------------------------
@dataclass(frozen=True)
class SentLog:
    """The experiment's sent digests in send order, with the clicks attributed so far.

    ``positions[i]`` and ``position_clicks[i]`` are the 0-based positions digest ``i`` showed
    and the ones clicked; ``open[i]`` is True while its click window is still open.
    """

    variant: list[str]
    sent_at: list[datetime]
    open: NDArray[np.bool_]
    positions: list[list[int]]
    position_clicks: list[list[int]]

    def shown(self) -> NDArray[np.float64]:
        return np.array([len(p) for p in self.positions], dtype=np.float64)

    def clicks(self) -> NDArray[np.float64]:
        return np.array([len(p) for p in self.position_clicks], dtype=np.float64)


def _sent_log(session: Session, experiment_id: int, now: datetime, window: timedelta) -> SentLog:
    """Every digest of the experiment sent by ``now``, with its clicks made by ``now`` (inside
    its window): ``now`` in the past re-reads the log as it stood then."""
    sent = session.execute(
        select(DigestRow.id, DigestRow.variant, DigestRow.sent_at)
        .where(DigestRow.experiment_id == experiment_id, DigestRow.sent_at <= now)
        .order_by(DigestRow.sent_at, DigestRow.id)
    ).all()
    shown: dict[int, list[int]] = defaultdict(list)
    for digest_id, position in session.execute(
        select(DigestItemRow.digest_id, DigestItemRow.position)
        .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
        .where(DigestRow.experiment_id == experiment_id, DigestRow.sent_at.is_not(None))
    ).all():
        shown[digest_id].append(position)
    clicked: dict[int, list[int]] = defaultdict(list)
    for click in attributed_clicks(session, window, experiment_id=experiment_id):
        if _aware(click.clicked_at) <= now:
            clicked[click.digest_id].append(click.position)
    return SentLog(
        variant=[r.variant for r in sent],
        sent_at=[_aware(r.sent_at) for r in sent],
        open=np.array([_aware(r.sent_at) + window > now for r in sent], dtype=bool),
        positions=[sorted(shown[r.id]) for r in sent],
        position_clicks=[sorted(clicked[r.id]) for r in sent],
    )


def sequential_result(
    log: SentLog, plan: ExperimentPlan, now: datetime, window: timedelta
) -> dict[str, Any]:
    """The interim result (always-valid, every sent digest) and the final one (if ready).

    Returns
    -------
    dict
        ``plan`` (alpha, control, horizon), ``interim`` (per-arm CTR with its confidence
        sequence, per-position CTR, clicks per digest; per treatment the difference from
        the control with its sequence at alpha / number of treatments; ``decision``) and
        ``final`` (``status``, and once ready the same numbers with fixed-horizon intervals).
    """
    names = [v.name for v in plan.variants]
    planned = plan.horizon_digests or DEFAULT_PLANNED_DIGESTS
    every = np.ones(len(log.variant), dtype=bool)
    interim = _arms_result(log, every, names, plan, planned, sequential=True)
    interim["open_digests"] = int(log.open.sum())
    interim["decision"] = _decision(interim, plan)
    return {
        "plan": {
            "alpha": plan.alpha,
            "control": plan.control,
            "horizon": plan.horizon_dict(),
            "planned_digests_per_arm": planned,
        },
        "interim": interim,
        "final": _final(log, plan, names, now, window),
    }


def _arms_result(
    log: SentLog,
    chosen: NDArray[np.bool_],
    names: list[str],
    plan: ExperimentPlan,
    planned: int,
    *,
    sequential: bool,
) -> dict[str, Any]:
    """Per-arm and per-difference numbers over the ``chosen`` digests."""
    variant = np.array(log.variant, dtype=object)
    shown, clicks = log.shown(), log.clicks()
    moments = {n: RatioMoments.of(clicks[chosen & (variant == n)], shown[chosen & (variant == n)])
               for n in names}  # fmt: skip
    arms = {}
    for name in names:
        mine = chosen & (variant == name)
        arms[name] = {
            "digests": int(mine.sum()),
            "open": int((mine & log.open).sum()),
            "shown": int(shown[mine].sum()),
            "clicked": int(clicks[mine].sum()),
            "clicks_per_digest": float(clicks[mine].mean()) if mine.any() else None,
            **_ctr_interval(moments[name], plan.alpha, planned, sequential),
            "positions": per_position_ctr(
                [log.positions[i] for i in np.flatnonzero(mine)],
                [log.position_clicks[i] for i in np.flatnonzero(mine)],
            ),
        }
    alpha_each = plan.alpha / max(1, len(names) - 1)  # Bonferroni over the treatments
    differences = {
        name: {"alpha": alpha_each, **_difference(moments[name], moments[plan.control],
                                                  alpha_each, planned, sequential)}
        for name in names if name != plan.control
    }  # fmt: skip
    kind = "always-valid confidence sequence" if sequential else "fixed-horizon normal interval"
    return {"interval": kind, "arms": arms, "differences": differences}


def per_position_ctr(shown: list[list[int]], clicked: list[list[int]]) -> list[dict[str, Any]]:
    """Click-through at each position 1..k: clicks there / digests that showed one there.

    Parameters
    ----------
    shown, clicked : list of list of int
        Per digest, the 0-based positions shown and those clicked.

    Returns
    -------
    list of dict
        ``{"position": p (1-based), "shown", "clicked", "ctr"}`` for every position shown.
    """
    depth = max((max(p) + 1 for p in shown if p), default=0)
    n_shown = np.zeros(depth, dtype=np.int64)
    n_clicked = np.zeros(depth, dtype=np.int64)
    for positions, clicks in zip(shown, clicked, strict=True):
        np.add.at(n_shown, np.asarray(positions, dtype=np.int64), 1)
        np.add.at(n_clicked, np.asarray(clicks, dtype=np.int64), 1)
    return [
        {"position": p + 1, "shown": int(s), "clicked": int(c), "ctr": c / s if s else None}
        for p, (s, c) in enumerate(zip(n_shown.tolist(), n_clicked.tolist(), strict=True))
    ]


def _ctr_interval(m: RatioMoments, alpha: float, planned: int, sequential: bool) -> dict[str, Any]:
    if sequential:
        ctr, low, high = arm_sequence(m, alpha, planned)
    else:
        ctr, var = ratio_and_variance(m)
        radius = fixed_radius(var, alpha)
        low, high = ctr - radius, ctr + radius
    return {"ctr": _finite(ctr), "ctr_interval": _bounds(low, high)}


def _difference(
    t: RatioMoments, c: RatioMoments, alpha: float, planned: int, sequential: bool
) -> dict[str, Any]:
    if sequential:
        diff, low, high = difference_sequence(t, c, alpha, planned)
    else:
        diff, low, high = difference_fixed(t, c, alpha)
    return {"diff": _finite(diff), "interval": _bounds(low, high), "verdict": _verdict(low, high)}


def _verdict(low: Any, high: Any) -> str:
    if np.isfinite(low) and low > 0:
        return "better"
    if np.isfinite(high) and high < 0:
        return "worse"
    return "undecided"


def _decision(interim: dict[str, Any], plan: ExperimentPlan) -> str:
    """One line an experimenter can act on today."""
    few = [n for n, a in interim["arms"].items() if a["digests"] < MIN_DECISION_DIGESTS]
    if few:
        return (f"no decision yet: arm(s) {', '.join(few)} have fewer than "
                f"{MIN_DECISION_DIGESTS} sent digests")  # fmt: skip
    decided = [(n, d) for n, d in interim["differences"].items() if d["verdict"] != "undecided"]
    if not decided:
        return (f"no decision yet: every always-valid {100 * (1 - plan.alpha):g}% interval of "
                f"the difference from {plan.control} still contains 0")  # fmt: skip
    said = [
        f"{name} {'beats' if d['verdict'] == 'better' else 'is worse than'} {plan.control} "
        f"(CTR {100 * d['diff']:+.2f} points, always-valid interval "
        f"[{100 * d['interval'][0]:+.2f}, {100 * d['interval'][1]:+.2f}])"
        for name, d in decided
    ]
    return "can stop now: " + "; ".join(said)


def _final(
    log: SentLog, plan: ExperimentPlan, names: list[str], now: datetime, window: timedelta
) -> dict[str, Any]:
    """The fixed-horizon result, or why it cannot be read yet."""
    chosen, status = _horizon_digests(log, plan, names, now, window)
    if chosen is None:
        return {"status": status}
    planned = plan.horizon_digests or DEFAULT_PLANNED_DIGESTS
    result = _arms_result(log, chosen, names, plan, planned, sequential=False)
    return {"status": status, **result}


def _horizon_digests(
    log: SentLog, plan: ExperimentPlan, names: list[str], now: datetime, window: timedelta
) -> tuple[NDArray[np.bool_] | None, str]:
    """The digests the fixed-horizon test reads, or None and the reason it cannot yet."""
    if plan.horizon_digests is None and plan.ends_at is None:
        return None, "no horizon planned: give the experiment file's horizon to read one"
    if plan.ends_at is not None:
        if now < plan.ends_at:
            return None, f"horizon not reached: the experiment runs until {plan.ends_at:%Y-%m-%d}"
        chosen = np.array([t < plan.ends_at for t in log.sent_at], dtype=bool)
    else:
        chosen = _first_per_arm(log.variant, names, plan.horizon_digests or 0)
        short = {n: sum(v == n for v in log.variant) for n in names}
        short = {n: k for n, k in short.items() if k < (plan.horizon_digests or 0)}
        if short:
            counts = ", ".join(f"{n} {k}" for n, k in short.items())
            return None, (f"horizon not reached: {plan.horizon_digests} digests per arm "
                          f"planned, sent so far: {counts}")  # fmt: skip
    still_open = chosen & log.open
    if still_open.any():
        last = max(t for t, o in zip(log.sent_at, still_open, strict=True) if o) + window
        return None, f"horizon reached; click windows close by {last:%Y-%m-%d %H:%M} UTC"
    return chosen, "final: horizon reached and every click window closed"


def _first_per_arm(variants: list[str], names: list[str], n: int) -> NDArray[np.bool_]:
    """The first ``n`` digests of each arm in send order (the log is in send order)."""
    seen: dict[str, int] = defaultdict(int)
    chosen = np.zeros(len(variants), dtype=bool)
    for i, variant in enumerate(variants):
        if variant in names and seen[variant] < n:
            chosen[i], seen[variant] = True, seen[variant] + 1
    return chosen


def _finite(value: Any) -> float | None:
    return float(value) if np.isfinite(value) else None


def _bounds(low: Any, high: Any) -> tuple[float | None, float | None]:
    """JSON-safe interval ends; None where the interval is still unbounded."""
    return _finite(low), _finite(high)
