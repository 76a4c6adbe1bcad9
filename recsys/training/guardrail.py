"""The guard-rail a new model must pass before it is activated.

Two checks, in order:

1. **Sanity**, always (the first model too): the model has a finite embedding for every paper
   of the catalogue, and its scores for a sample of users against the whole catalogue are
   finite. A model that fails it would send NaN-ranked or incomplete digests.
2. **No worse than the active model on the latest logs** (skipped for the first model): both
   models re-rank the logged digests of the latest ``PAPERBOY_GUARDRAIL_DAYS`` whose click
   window (``PAPERBOY_CLICK_ATTRIBUTION_DAYS``) has closed, with the shipped ranker config
   (``PAPERBOY_EXPLORE_SLOTS``), through :func:`recsys.online.offpolicy_logs.offpolicy_report`:
   the very function ``paperboy experiment offpolicy`` calls, so the two never disagree.
   The metric is SNIPS expected clicks per digest (DR when SNIPS is undefined for either
   model, i.e. it would leave positions empty that every logged arm filled). The candidate
   passes if ``candidate >= (1 - PAPERBOY_GUARDRAIL_TOLERANCE) * active``.

   Too few logs cannot judge, and then the candidate passes, saying so: fewer than
   ``PAPERBOY_GUARDRAIL_MIN_DIGESTS`` logged digests in the window, or an estimate the
   off-policy code refuses (the logs cannot support it: without a uniform holdout or full
   exploration, a model that changes the ranked head is unsupported). A fresh install, or one
   that logs no holdout, therefore keeps getting new models.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from recsys.online.assignment import RankerConfig
from recsys.online.logged import logged_arms
from recsys.online.offpolicy_logs import offpolicy_report
from recsys.recommender import PaperBlock, UserBlock
from recsys.settings import Settings
from recsys.training.model import Model

METRIC = "snips"  # the primary estimate; "dr" where SNIPS is undefined (module docstring)
FALLBACK = "dr"
SANITY_USERS = 256  # users scored against the whole catalogue by the sanity check
NOT_ENOUGH = "not enough logs to judge"


@dataclass(frozen=True)
class Verdict:
    """The guard-rail's answer, stored in the model's manifest as ``guardrail``.

    ``candidate`` and ``active`` are the two models' estimates (None when not computed);
    ``since``/``until`` bound the logged digests' ``sent_at``; ``variant`` is the ranker
    config both were evaluated with (pass it to ``paperboy experiment offpolicy`` to see the
    same numbers).
    """

    metric: str
    candidate: float | None
    active: float | None
    tolerance: float
    passed: bool
    reason: str
    active_version: str | None = None
    digests: int = 0
    since: str | None = None
    until: str | None = None
    variant: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    session: Session,
    settings: Settings,
    candidate: Model,
    active: Model | None,
    now: datetime,
    sample: tuple[UserBlock, PaperBlock],
) -> Verdict:
    """Whether ``candidate`` may replace ``active`` (None: no model is active yet).

    ``sample`` is the training snapshot's users and the whole catalogue, for the sanity check.
    """
    tolerance = settings.guardrail_tolerance
    problem = sanity_problem(candidate, *sample)
    if problem is not None:
        return Verdict(METRIC, None, None, tolerance, False, f"sanity check failed: {problem}")
    if active is None:
        return Verdict(METRIC, None, None, tolerance, True, "first model: none is active")
    since, until = window(settings, now)
    config = shipped_config(settings)
    base: dict[str, Any] = {"active_version": active.version, "since": since.isoformat(),
            "until": until.isoformat(), "variant": config.as_dict()}  # fmt: skip
    attribution = timedelta(days=settings.click_attribution_days)
    arms = logged_arms(session, now=now, window=attribution, since=since, until=until)
    digests = sum(count for _, count in arms.values())
    if digests < settings.guardrail_min_digests:
        reason = (
            f"{NOT_ENOUGH}: {digests} logged digests sent in [{since:%Y-%m-%d %H:%M}, "
            f"{until:%Y-%m-%d %H:%M}) < PAPERBOY_GUARDRAIL_MIN_DIGESTS="
            f"{settings.guardrail_min_digests}"
        )
        return Verdict(METRIC, None, None, tolerance, True, reason, digests=digests, **base)
    ours, theirs = (
        evaluate(session, model, config, now=now, attribution=attribution, since=since,
                 until=until)
        for model in (candidate, active)
    )  # fmt: skip
    return Verdict(**compare(ours, theirs, tolerance), digests=digests, **base)


def window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` of the digests judged: the latest ``guardrail_days`` of digests
    whose click window has closed (a younger digest still collects clicks)."""
    until = now - timedelta(days=settings.click_attribution_days)
    return until - timedelta(days=settings.guardrail_days), until


def shipped_config(settings: Settings) -> RankerConfig:
    """The ranker config users outside experiments and the holdout get."""
    return RankerConfig(explore_slots=settings.explore_slots)


def evaluate(
    session: Session,
    model: Model,
    config: RankerConfig,
    *,
    now: datetime,
    attribution: timedelta,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """``model``'s off-policy result for ``config`` (a ``VariantResult`` as a dict), exactly
    as ``paperboy experiment offpolicy`` reports it, less the bootstrap intervals."""
    report = offpolicy_report(
        session, model, {"shipped": config}, now=now, window=attribution, since=since,
        until=until, samples=0,
    )  # fmt: skip
    result: dict[str, Any] = report["variants"]["shipped"]
    return result


def compare(candidate: dict[str, Any], active: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """The verdict's fields from two variant results (pure).

    A refused or undefined estimate on either side cannot judge: the candidate passes.
    """
    metric = METRIC
    if not (METRIC in candidate["estimates"] and METRIC in active["estimates"]):
        metric = FALLBACK  # SNIPS is not reported where it is biased (offpolicy_logs)
    ours, theirs = (_value(r, metric) for r in (candidate, active))
    fields = {"metric": metric, "candidate": ours, "active": theirs, "tolerance": tolerance}
    for who, result in (("candidate", candidate), ("active model", active)):
        if result["refused"]:
            why = f"{NOT_ENOUGH} ({who}): {result['refused']}"
            return {**fields, "passed": True, "reason": why}
    if ours is None or theirs is None:
        return {**fields, "passed": True, "reason": f"{NOT_ENOUGH}: {metric} is undefined"}
    floor = (1 - tolerance) * theirs
    if ours >= floor:
        reason = f"{metric} clicks/digest {ours:.4f} >= (1 - {tolerance:g}) x active {theirs:.4f}"
        return {**fields, "passed": True, "reason": reason}
    drop = 1 - ours / theirs
    reason = (
        f"{metric} clicks/digest {ours:.4f} is {100 * drop:.1f}% below the active model's "
        f"{theirs:.4f} (tolerance {100 * tolerance:g}%)"
    )
    return {**fields, "passed": False, "reason": reason}


def sanity_problem(model: Model, users: UserBlock, papers: PaperBlock) -> str | None:
    """What makes ``model`` unfit to serve at all, or None.

    ``papers`` is the whole catalogue; a sample of ``users`` is scored against it.
    """
    missing = model.store.missing(papers.paper_ids)
    if len(missing):
        return f"{len(missing)} of {len(papers.paper_ids)} papers have no stored embedding"
    if not np.isfinite(papers.embeddings).all():
        bad = int((~np.isfinite(papers.embeddings).all(axis=1)).sum())
        return f"{bad} paper embeddings are not finite"
    rows = np.arange(min(users.n_users, SANITY_USERS))
    scores = model.component.score(users.take(rows), papers)
    if scores.shape != (len(rows), len(papers.paper_ids)):
        return f"scores have shape {scores.shape}, expected {(len(rows), len(papers.paper_ids))}"
    if not np.isfinite(scores).all():
        bad = int((~np.isfinite(scores)).sum())
        return f"{bad} of {scores.size} scores of {len(rows)} users are NaN or infinite"
    return None


def _value(result: dict[str, Any], metric: str) -> float | None:
    value = result["estimates"].get(metric, {}).get("value")
    return None if value is None or not math.isfinite(value) else float(value)
