"""Interleaving experiments, the stored part: define one, and read who won.

An interleaving experiment is an ``experiments`` row of kind ``"interleave"`` with exactly two
variants, ``a`` and ``b`` (configs in ``RankerConfig`` syntax). Its variants are stored with
half the eligible share each, so ``recsys.online.experiments.arms_for`` marks the digests it
owns exactly as for a split; ``recsys.digests.interleave`` then ranks each of them with both
configs and drafts one list (``recsys.online.interleaving``), logging the digest's variant as
``"interleaved"``, its config as ``{"interleave": {"a": ..., "b": ...}}`` and each item's team
in ``digest_items.team``.

The report credits each analysed digest with at least one attributed click to the team whose
items got more clicks (``recsys.online.analysis.attributed_clicks``: same window, same rules
as the split report) and gives A's share of the decided digests with a 95% Wilson interval
and an exact two-sided sign test.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binomtest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, DigestRow, ExperimentRow
from recsys.online.analysis import attributed_clicks, wilson_interval
from recsys.online.assignment import ExperimentError, RankerConfig, Variant
from recsys.online.experiments import INTERLEAVE, create_experiment, get_experiment
from recsys.online.interleaving import TEAM_A, TEAM_B, TIE, credit

INTERLEAVED = "interleaved"  # digests.variant of an interleaved digest


@dataclass(frozen=True, kw_only=True)  # positional args would fill RankerConfig's fields
class InterleavedConfig(RankerConfig):
    """The logged policy of an interleaved digest: team-draft of ``a`` and ``b``.

    Only logged (``digests.ranker_config``); it is never parsed back into a ranker, so
    ``RankerConfig.parse`` refusing the ``interleave`` key keeps the off-policy engine from
    treating such a digest as one ranker's.
    """

    a: RankerConfig = field(default_factory=RankerConfig)
    b: RankerConfig = field(default_factory=RankerConfig)

    def as_dict(self) -> dict[str, Any]:
        return {"interleave": {TEAM_A: self.a.as_dict(), TEAM_B: self.b.as_dict()}}


def create_interleave(
    session: Session,
    name: str,
    a: RankerConfig,
    b: RankerConfig,
    now: datetime,
    *,
    share: float = 1.0,
    salt: str | None = None,
) -> ExperimentRow:
    """Store a running interleaving experiment of ``a`` against ``b``.

    Parameters
    ----------
    share : float
        Share of users (outside the holdout) whose digests are interleaved, in (0, 1].

    Raises
    ------
    ExperimentError
        If a config samples (``uniform`` or ``explore_slots``: the logged propensities are
        exact only for deterministic rankers), ``share`` is out of range, or
        :func:`recsys.online.experiments.create_experiment` refuses.
    """
    for team, config in ((TEAM_A, a), (TEAM_B, b)):
        if config.random:
            raise ExperimentError(
                f"--{team}: uniform and explore_slots are not allowed in an interleaving "
                "experiment (it compares rankers; a sampled list would make the logged "
                "propensities inexact)"
            )
    if isinstance(share, bool) or not 0 < share <= 1:
        raise ExperimentError(f"share: {share!r} must be a number in (0, 1]")
    variants = [Variant(TEAM_A, share / 2, a), Variant(TEAM_B, share / 2, b)]
    return create_experiment(session, name, variants, now, salt=salt, kind=INTERLEAVE)


def interleave_report(
    session: Session, name: str, now: datetime, window: timedelta
) -> dict[str, Any]:
    """Wins of A, wins of B and ties over the experiment's analysed digests with a click.

    ``preference_a = wins_a / (wins_a + wins_b)`` (0.5: no preference) with a 95% Wilson
    interval and the exact two-sided sign-test p-value; ``digests``/``skipped``/``pending``/
    ``analysed`` count the logged digests as the split report does, ``clicked`` the analysed
    ones with at least one attributed click, ``clicks_a``/``clicks_b`` the clicks per team.

    Raises
    ------
    ExperimentError
        If there is no experiment ``name`` or it is not an interleaving experiment.
    """
    experiment = get_experiment(session, name)
    if experiment.kind != INTERLEAVE:
        raise ExperimentError(
            f"experiment {name!r} is a {experiment.kind} experiment: read it with online-report"
        )
    logged = session.execute(
        select(DigestRow.id, DigestRow.user_id, DigestRow.status, DigestRow.sent_at)
        .where(DigestRow.experiment_id == experiment.id, DigestRow.variant == INTERLEAVED)
        .order_by(DigestRow.id)
    ).all()
    sent = [r for r in logged if r.sent_at is not None]
    analysed = [r.id for r in sent if _aware(r.sent_at) + window <= now]
    teams = _teams(session, experiment.id)
    clicked: dict[int, set[int]] = defaultdict(set)
    for click in attributed_clicks(session, window, experiment_id=experiment.id):
        clicked[click.digest_id].add(click.position)
    tally = {TEAM_A: 0, TEAM_B: 0, TIE: 0}
    per_team = {TEAM_A: 0, TEAM_B: 0}
    for digest_id in analysed:
        if not clicked.get(digest_id) or digest_id not in teams:
            continue
        digest_teams = teams[digest_id]
        hits = np.zeros(len(digest_teams), dtype=bool)
        hits[[p for p in clicked[digest_id] if p < len(hits)]] = True
        tally[credit(digest_teams, hits)] += 1
        for team in per_team:
            per_team[team] += int(np.sum(hits & (digest_teams == team)))
    return {
        "experiment": experiment.name,
        "kind": experiment.kind,
        "status": experiment.status,
        "window_days": window / timedelta(days=1),
        "now": now.isoformat(),
        "a": experiment.variants[0]["config"],
        "b": experiment.variants[1]["config"],
        "users": len({r.user_id for r in logged}),
        "digests": len(logged),
        "skipped": sum(r.status == "skipped" for r in logged),
        "pending": len(sent) - len(analysed),
        "analysed": len(analysed),
        "clicked": sum(tally.values()),
        "wins_a": tally[TEAM_A],
        "wins_b": tally[TEAM_B],
        "ties": tally[TIE],
        "clicks_a": per_team[TEAM_A],
        "clicks_b": per_team[TEAM_B],
        **preference(tally[TEAM_A], tally[TEAM_B]),
    }


def preference(wins_a: int, wins_b: int) -> dict[str, Any]:
    """A's share of decided digests, its 95% Wilson interval and the sign test's p-value."""
    decided = wins_a + wins_b
    return {
        "preference_a": wins_a / decided if decided else None,
        "preference_a_wilson": wilson_interval(wins_a, decided),
        "sign_test_p": float(binomtest(wins_a, decided, 0.5).pvalue) if decided else 1.0,
    }


def _teams(session: Session, experiment_id: int) -> dict[int, NDArray[np.str_]]:
    """Each interleaved digest's team per position, in position order."""
    rows = session.execute(
        select(DigestItemRow.digest_id, DigestItemRow.position, DigestItemRow.team)
        .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
        .where(DigestRow.experiment_id == experiment_id, DigestItemRow.team.is_not(None))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    ).all()
    grouped: dict[int, list[str]] = defaultdict(list)
    for digest_id, _, team in rows:
        grouped[digest_id].append(str(team))  # never NULL: filtered above
    return {d: np.array(t, dtype="<U1") for d, t in grouped.items()}


def _aware(when: datetime) -> datetime:
    """UTC-aware, whichever way the backend handed the value back."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
