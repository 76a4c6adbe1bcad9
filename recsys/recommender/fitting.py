"""Fit the hybrid the pipeline ships: blend weights from a time-based validation split.

Nightly training (``recsys.training.nightly``) and the offline evaluation (``experiments``) share
this: hold out each user's latest positive events, fit every component on the rest, learn
the blend weights (``fit_blend_weights``) on the held-out events, then refit every
component on everything. The weights are stored with the model, so the hybrid that ranks
digests is the one that was validated.

When no user has two positive events there is nothing to hold out, and
:func:`spread_weights` gives every component an equal say instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.progress import Progress, no_progress
from recsys.recommender.als import AlsRidgeMap
from recsys.recommender.base import Component, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.hybrid import Hybrid, default_components, fit_blend_weights, score_spread

VALIDATION_FRACTION = 0.2
# Users scored when learning weights: every weight trial re-ranks this block, so it bounds
# the cost of the search; more users would only refine the third decimal.
MAX_VALIDATION_USERS = 1500
# ... and users x papers per component block, so a 50,000-paper catalogue scores ~400 users
# (five float32 blocks of ~80 MB) rather than 1,500 (1.5 GB).
MAX_VALIDATION_CELLS = 20_000_000
# Users whose fallback weights are measured (score spreads settle long before this).
FALLBACK_USERS = 500


@dataclass(frozen=True)
class FittedHybrid:
    """A fitted hybrid, where its weights came from, and what fitting cost.

    Attributes
    ----------
    hybrid : Hybrid
    weight_source : str
        ``"validation"`` or ``"fallback (...)"``.
    n_validation_users : int
        Users whose held-out events the weights were learned on (0 for the fallback).
    seconds : dict of str to float
        ``{"validation": ..., "fit": ...}``.
    """

    hybrid: Hybrid
    weight_source: str
    n_validation_users: int
    seconds: dict[str, float] = field(default_factory=dict)


def latest_events(
    event_user: NDArray[np.integer],
    positive: NDArray[np.bool_],
    recency: NDArray[np.floating],
    n_users: int,
    fraction: float,
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Mask of each user's latest ``fraction`` of positive events (at least one of >= 2).

    Parameters
    ----------
    event_user : NDArray[np.integer], shape (n_events,)
        User row of each event.
    positive : NDArray[np.bool_], shape (n_events,)
        Events that may be held out (weight > 0).
    recency : NDArray[np.floating], shape (n_events,)
        Smaller is more recent (an age); ties are broken at random by ``rng``.
    n_users : int
    fraction : float
    rng : numpy.random.Generator

    Returns
    -------
    NDArray[np.bool_], shape (n_events,)
        True for held-out events. Users with fewer than two positive events keep them all.
    """
    n_positive = np.bincount(event_user[positive], minlength=n_users)
    n_held = np.where(n_positive >= 2, np.maximum(1, np.floor(fraction * n_positive)), 0)
    idx = np.flatnonzero(positive)
    order = np.lexsort((rng.random(len(idx)), recency[idx], event_user[idx]))
    sorted_users = event_user[idx][order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_users, sorted_users)
    held = np.zeros(len(event_user), bool)
    held[idx[order]] = rank < n_held[sorted_users]
    return held


def hold_out_latest(
    snapshot: TrainingSnapshot, rng: np.random.Generator, fraction: float = VALIDATION_FRACTION
) -> tuple[TrainingSnapshot, sp.csr_matrix]:
    """The snapshot without each user's latest positive events, and those events.

    Returns
    -------
    (TrainingSnapshot, scipy.sparse.csr_matrix of shape (n_users, n_papers))
        The training part, and 1 where a held-out (user, paper) pair is.
    """
    users = snapshot.users
    held = latest_events(
        users.event_user,
        users.event_weight > 0,
        users.event_age_days,
        users.n_users,
        fraction,
        rng,
    )
    shape = (users.n_users, snapshot.papers.n_papers)
    relevant = sp.csr_matrix(
        (np.ones(held.sum(), np.float32), (users.event_user[held], users.event_item[held])),
        shape=shape,
    )
    relevant.data[:] = 1.0  # a paper held out twice is still one relevant paper
    keep = ~held
    training = replace(
        users,
        event_user=users.event_user[keep],
        event_item=users.event_item[keep],
        event_weight=users.event_weight[keep],
        event_age_days=users.event_age_days[keep],
    )
    return TrainingSnapshot(training, snapshot.papers), relevant


def learn_blend_weights(
    hybrid: Hybrid,
    users: UserBlock,
    papers: PaperBlock,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
) -> NDArray[np.float64]:
    """``fit_blend_weights`` on each fitted component's scores of ``users`` x ``papers``."""
    scores = [component.score(users, papers) for component in hybrid.components]
    return fit_blend_weights(scores, relevant, exclude=exclude)


def spread_weights(
    hybrid: Hybrid, users: UserBlock, papers: PaperBlock, exclude: sp.csr_matrix, co_read: bool
) -> NDArray[np.float64]:
    """Weights when nothing can be held out: ``1 / spread`` of each component's scores.

    Every component gets an equal say whatever its scale, except ALS when no user read two
    papers (``co_read`` False): it learns only from papers read by the same user, so its
    factors carry no signal and its weight is 0. Nothing here is tuned, since there is
    nothing to tune on.
    """
    weights = []
    for component in hybrid.components:
        useless = isinstance(component, AlsRidgeMap) and not co_read
        spread = score_spread(component.score(users, papers), exclude)
        weights.append(0.0 if useless else 1.0 / spread)
    return np.array(weights)


def fit_hybrid(
    snapshot: TrainingSnapshot,
    make_components: Callable[[], list[Component]] = default_components,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> FittedHybrid:
    """Learn blend weights on the users' latest events, then fit every component on all.

    Parameters
    ----------
    snapshot : TrainingSnapshot
        Everything known today; ``users.event_age_days`` orders the events in time.
    make_components : callable
        Builds fresh, unfitted components (called twice: validation and final fit).
    seed : int
        Seed of the tie-breaks in the split and of the user sample.
    progress : callable
        ``progress(stage, done, total)``.
    """
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    training, relevant = hold_out_latest(snapshot, rng)
    weights, n_users = None, 0
    if relevant.nnz:
        probe = fit_components(Hybrid(make_components()), training, progress, "validation fit")
        users = _validation_users(relevant, snapshot.papers.n_papers, rng)
        exclude = training.interactions(positive_only=False)[users]
        exclude.data[:] = 1.0
        progress("learn blend weights", 0, 1)
        weights = learn_blend_weights(
            probe, training.users.take(users), snapshot.papers, relevant[users], exclude
        )
        progress("learn blend weights", 1, 1)
        n_users = len(users)
    seconds = {"validation": round(time.perf_counter() - started, 2)}
    started = time.perf_counter()
    hybrid = fit_components(Hybrid(make_components()), snapshot, progress, "fit")
    source = "validation"
    if weights is None:
        weights = fallback_weights(hybrid, snapshot, rng)
        source = "fallback (no user has two positive events to hold one out)"
    hybrid.with_weights(weights)
    seconds["fit"] = round(time.perf_counter() - started, 2)
    return FittedHybrid(hybrid, source, n_users, seconds)


def fit_components(
    hybrid: Hybrid, snapshot: TrainingSnapshot, progress: Progress, stage: str
) -> Hybrid:
    """Fit each component of ``hybrid`` on ``snapshot``, reporting progress per component."""
    total = len(hybrid.components)
    progress(stage, 0, total)
    for done, component in enumerate(hybrid.components, start=1):
        component.fit(snapshot)
        progress(stage, done, total)
    return hybrid


def _validation_users(
    relevant: sp.csr_matrix, n_papers: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    cap = max(1, min(MAX_VALIDATION_USERS, MAX_VALIDATION_CELLS // max(n_papers, 1)))
    if len(users) > cap:
        users = np.sort(rng.choice(users, cap, replace=False))
    return users


def fallback_weights(
    hybrid: Hybrid, snapshot: TrainingSnapshot, rng: np.random.Generator
) -> NDArray[np.float64]:
    """:func:`spread_weights` of the fitted ``hybrid`` on a sample of users with a click.

    The weights when nothing can be held out (every user has a single positive event).
    """
    train = snapshot.interactions()
    users = np.flatnonzero(np.diff(train.indptr) > 0)
    if len(users) == 0:  # no positive event at all: every user is cold, any weights do
        return np.ones(len(hybrid.components))
    users = np.sort(rng.choice(users, min(len(users), FALLBACK_USERS), replace=False))
    co_read = bool((np.diff(train.indptr) >= 2).any())
    exclude = train[users]
    return spread_weights(hybrid, snapshot.users.take(users), snapshot.papers, exclude, co_read)
