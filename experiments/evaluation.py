"""Offline evaluation shared by every dataset: split, fit, blend, rank in blocks, measure.

An :class:`EvalData` is one protocol on one dataset: a paper catalogue (ids, embeddings,
ages, optional sparse features), training events and test pairs, and which papers are
ranked. :func:`run_evaluation` then

1. holds out part of the *training* events as a validation split (:func:`validation_split`;
   the test pairs are never read for this), fits every component on the rest, and learns the
   hybrid's blend weights on the held-out part (``fit_blend_weights``);
2. refits every component on the full training events;
3. ranks the candidates for every test user in blocks, with
   ``recsys.recommender.ranking.top_k``, for the hybrid and for each component alone, excluding each
   user's own training papers;
4. returns recall@50/100/300, NDCG@10 and friends per model, averaged over users with at
   least one relevant candidate (the published citeulike-a protocol).

Everything here is deterministic for a given seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from recsys.progress import Progress, no_progress
from recsys.recommender import Component, PaperBlock, TrainingSnapshot, UserBlock, metrics
from recsys.recommender.fitting import (
    MAX_VALIDATION_USERS,
    VALIDATION_FRACTION,
    fallback_weights,
    fit_components,
    latest_events,
    learn_blend_weights,
)
from recsys.recommender.hybrid import Hybrid, default_components
from recsys.recommender.ranking import top_k

CUTOFFS: tuple[int, ...] = (50, 100, 300)
NDCG_CUTOFFS: tuple[int, ...] = (10, 100)
# Users ranked per block: a (block, n_candidates) float32 score matrix plus top_k's uint64
# keys stay under ~250 MB for 17,000 candidates.
BLOCK_USERS = 1024


@dataclass(frozen=True)
class EvalData:
    """One evaluation protocol on one dataset.

    Attributes
    ----------
    name : str
        Split name, reported as ``"split"``.
    paper_ids : NDArray[np.int64], shape (n_papers,)
    embeddings : NDArray[np.float32], shape (n_papers, d)
    paper_age_days : NDArray[np.float32], shape (n_papers,)
    event_user, event_paper : NDArray[np.int64], shape (n_events,)
        Training events: user row and paper row.
    event_weight : NDArray[np.float32], shape (n_events,)
        +1 for a positive event, -1 for "less like this".
    event_age_days : NDArray[np.float32], shape (n_events,)
        Age of each event when the model is trained (0 when the data has no times).
    test : scipy.sparse.csr_matrix, shape (n_users, n_papers)
        Relevant (user, paper) pairs to find.
    candidates : NDArray[np.int64] or None
        Paper rows that are ranked; None ranks every paper. Each user's own training papers
        are always excluded.
    catalogue : NDArray[np.int64]
        Paper rows the models may train on: all papers, or for cold-start protocols only
        those with training events (held-out papers are never seen in training).
    features : scipy.sparse.csr_matrix or None, shape (n_papers, n_features)
        Extra sparse content features for LightFM (tags, authors, ...).
    event_order : NDArray[np.float64] or None, shape (n_events,)
        When each training event happened (larger is later), for the time-based validation
        split; None when the data has no order (events are then held out at random).
    """

    name: str
    paper_ids: NDArray[np.int64]
    embeddings: NDArray[np.float32]
    paper_age_days: NDArray[np.float32]
    event_user: NDArray[np.int64]
    event_paper: NDArray[np.int64]
    event_weight: NDArray[np.float32]
    event_age_days: NDArray[np.float32]
    test: sp.csr_matrix
    candidates: NDArray[np.int64] | None
    catalogue: NDArray[np.int64]
    features: sp.csr_matrix | None = None
    event_order: NDArray[np.float64] | None = None

    @property
    def n_users(self) -> int:
        """Users (rows of ``test``)."""
        return int(self.test.shape[0])

    @property
    def n_papers(self) -> int:
        """Papers in the catalogue arrays."""
        return len(self.paper_ids)

    @property
    def cold_start(self) -> bool:
        """Whether only papers unseen in training are ranked."""
        return self.candidates is not None

    def train_matrix(self) -> sp.csr_matrix:
        """(n_users, n_papers) summed training event weights."""
        shape = (self.n_users, self.n_papers)
        entries = (self.event_weight, (self.event_user, self.event_paper))
        matrix = sp.csr_matrix(entries, shape=shape, dtype=np.float32)
        matrix.eliminate_zeros()
        return matrix

    def candidate_rows(self) -> NDArray[np.int64]:
        """Paper rows that are ranked."""
        return np.arange(self.n_papers) if self.candidates is None else self.candidates


# --- building blocks ------------------------------------------------------------------------
def paper_block(data: EvalData, rows: NDArray[np.int64]) -> PaperBlock:
    """The papers ``rows`` as a block, with their extra features when the data has them."""
    features = None if data.features is None else data.features[rows]
    return PaperBlock(
        data.paper_ids[rows], data.embeddings[rows], data.paper_age_days[rows], features
    )


def user_block(data: EvalData, users: NDArray[np.int64]) -> UserBlock:
    """The users ``users`` with their training events; the history is the whole catalogue."""
    new_row = np.full(data.n_users, -1, np.int64)
    new_row[users] = np.arange(len(users))
    keep = new_row[data.event_user] >= 0
    no_interests = np.empty((0, data.embeddings.shape[1]), np.float32)
    return UserBlock(
        user_ids=users,
        history_embeddings=data.embeddings,
        event_user=new_row[data.event_user[keep]].astype(np.int32),
        event_item=data.event_paper[keep].astype(np.int32),
        event_weight=data.event_weight[keep],
        event_age_days=data.event_age_days[keep],
        interest_embeddings=no_interests,
        interest_user=np.empty(0, np.int32),
        history_ids=data.paper_ids,
    )


def training_snapshot(data: EvalData) -> TrainingSnapshot:
    """All users and their training events over the training catalogue."""
    papers = paper_block(data, data.catalogue)
    row_in_catalogue = np.full(data.n_papers, -1, np.int64)
    row_in_catalogue[data.catalogue] = np.arange(len(data.catalogue))
    event_item = row_in_catalogue[data.event_paper]
    if (event_item < 0).any():
        raise ValueError(f"{data.name}: a training event is on a paper outside the catalogue")
    users = UserBlock(
        user_ids=np.arange(data.n_users),
        history_embeddings=papers.embeddings,
        event_user=data.event_user.astype(np.int32),
        event_item=event_item.astype(np.int32),
        event_weight=data.event_weight,
        event_age_days=data.event_age_days,
        interest_embeddings=np.empty((0, papers.d), np.float32),
        interest_user=np.empty(0, np.int32),
        history_ids=papers.paper_ids,
    )
    return TrainingSnapshot(users, papers)


# --- validation split -----------------------------------------------------------------------
def validation_split(
    data: EvalData, rng: np.random.Generator, fraction: float = VALIDATION_FRACTION
) -> EvalData:
    """Hold out part of the training events as validation; the test pairs are not read.

    Mirrors the protocol: for a cold-start protocol, ``fraction`` of the training papers are
    held out entirely (the newest ones when papers have ages, else a random draw) and become
    the validation candidates; otherwise each user with at least two positive events keeps
    all but ``fraction`` of them (at least one held out): the latest by ``event_order`` when
    the data has one, as DESIGN.md asks for a time-based split, else a random draw. Users with
    a single event cannot be split, so a training file with one paper per user (citeulike
    P=1) has an empty validation split.
    """
    held = _held_papers(data, rng, fraction) if data.cold_start else None
    if held is not None:
        is_held = np.zeros(data.n_papers, bool)
        is_held[held] = True
        held_event = is_held[data.event_paper]
    else:
        held_event = _held_events(data, rng, fraction)
    keep = ~held_event
    positive = held_event & (data.event_weight > 0)
    shape = (data.n_users, data.n_papers)
    test = sp.csr_matrix(
        (
            np.ones(positive.sum(), np.float32),
            (data.event_user[positive], data.event_paper[positive]),
        ),
        shape=shape,
    )
    catalogue = data.catalogue if held is None else np.setdiff1d(data.catalogue, held)
    return replace(
        data,
        name=f"{data.name}-validation",
        event_user=data.event_user[keep],
        event_paper=data.event_paper[keep],
        event_weight=data.event_weight[keep],
        event_age_days=data.event_age_days[keep],
        event_order=None if data.event_order is None else data.event_order[keep],
        test=test,
        candidates=held,
        catalogue=catalogue,
    )


def _held_papers(data: EvalData, rng: np.random.Generator, fraction: float) -> NDArray[np.int64]:
    warm = np.unique(data.event_paper)
    n_held = int(round(fraction * len(warm)))
    ages = data.paper_age_days[warm]
    if np.ptp(ages) > 0:  # papers have dates: hold out the newest, as new papers arrive
        order = np.lexsort((rng.random(len(warm)), ages))
        return np.sort(warm[order[:n_held]])
    return np.sort(rng.choice(warm, n_held, replace=False))


def _held_events(data: EvalData, rng: np.random.Generator, fraction: float) -> NDArray[np.bool_]:
    # Latest first by event_order (larger is later), random among equals.
    recency = np.zeros(len(data.event_user)) if data.event_order is None else -data.event_order
    positive = data.event_weight > 0
    return latest_events(data.event_user, positive, recency, data.n_users, fraction, rng)


# --- fitting --------------------------------------------------------------------------------
@dataclass
class FittedModels:
    """The fitted hybrid, how its weights were set, and the time fitting took."""

    hybrid: Hybrid
    weight_source: str
    seconds: dict[str, float]

    @property
    def models(self) -> dict[str, Component]:
        """``{"hybrid": ..., "<component>": ...}``: everything that is evaluated."""
        return {
            "hybrid": self.hybrid,
            **dict(zip(self.hybrid.component_names, self.hybrid.components, strict=True)),
        }


def fit_models(
    data: EvalData,
    make_components: Callable[[], list[Component]] = default_components,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> FittedModels:
    """Learn blend weights on a validation split of the training data, then refit on all of it.

    When no validation split can be held out (one training paper per user), the weights come
    from :func:`fallback_weights` instead.
    """
    started = time.perf_counter()
    validation = validation_split(data, np.random.default_rng(seed))
    weights = None
    if validation.test.nnz:
        probe = Hybrid(make_components())
        fit_components(probe, training_snapshot(validation), progress, "fit on validation split")
        weights = _learn_weights(probe, validation, np.random.default_rng(seed), progress)
    seconds = {"validation": time.perf_counter() - started}
    started = time.perf_counter()
    hybrid = Hybrid(make_components())
    fit_components(hybrid, training_snapshot(data), progress, "fit on full training data")
    source = "validation"
    if weights is None:
        snapshot = training_snapshot(data)  # spreads over the training catalogue
        weights = fallback_weights(hybrid, snapshot, np.random.default_rng(seed))
        source = "fallback (no validation split possible)"
    hybrid.with_weights(weights)
    seconds["fit"] = time.perf_counter() - started
    return FittedModels(hybrid, source, seconds)


def _learn_weights(
    probe: Hybrid, validation: EvalData, rng: np.random.Generator, progress: Progress
) -> NDArray[np.float64]:
    users = np.flatnonzero(np.diff(validation.test.indptr) > 0)
    if len(users) > MAX_VALIDATION_USERS:
        users = np.sort(rng.choice(users, MAX_VALIDATION_USERS, replace=False))
    cols = validation.candidate_rows()
    block, papers = user_block(validation, users), paper_block(validation, cols)
    exclude = validation.train_matrix()[users][:, cols]
    progress("learn blend weights", 0, 1)
    weights = learn_blend_weights(probe, block, papers, validation.test[users][:, cols], exclude)
    progress("learn blend weights", 1, 1)
    return weights


# --- ranking and metrics --------------------------------------------------------------------
def evaluate_model(
    model: Component,
    data: EvalData,
    *,
    stage: str = "rank",
    progress: Progress = no_progress,
) -> dict[str, float]:
    """Rank the candidates for every test user in blocks and average the metrics.

    Returns
    -------
    dict
        ``recall@k`` for ``CUTOFFS``, ``ndcg@k`` for ``NDCG_CUTOFFS``, ``precision@10``,
        ``mrr@10`` and ``coverage@100`` (share of candidates recommended to anyone in a top 100).
    """
    cols = data.candidate_rows()
    papers = model.paper_vectors(paper_block(data, cols))  # once per model
    train = data.train_matrix()
    users = np.flatnonzero(np.diff(data.test[:, cols].indptr) > 0)
    sums: dict[str, float] = {}
    shown = np.zeros(len(cols), bool)
    top = max(CUTOFFS)
    progress(stage, 0, len(users))
    for start in range(0, len(users), BLOCK_USERS):
        rows = users[start : start + BLOCK_USERS]
        scores = model.user_vectors(user_block(data, rows)) @ papers.T
        ranked, _ = top_k(scores, top, exclude=train[rows][:, cols])
        relevant = data.test[rows][:, cols]
        _accumulate(sums, metrics.hit_matrix(ranked, relevant), metrics.count_relevant(relevant))
        shown[ranked[:, :100][ranked[:, :100] >= 0]] = True
        progress(stage, min(start + BLOCK_USERS, len(users)), len(users))
    results = {name: total / max(len(users), 1) for name, total in sums.items()}
    results["coverage@100"] = float(shown.mean())
    return results


def _accumulate(
    sums: dict[str, float], hits: NDArray[np.bool_], n_relevant: NDArray[np.int64]
) -> None:
    per_user = {f"recall@{k}": metrics.recall_at_k(hits, n_relevant, k) for k in CUTOFFS}
    per_user |= {f"ndcg@{k}": metrics.ndcg_at_k(hits, n_relevant, k) for k in NDCG_CUTOFFS}
    per_user["precision@10"] = metrics.precision_at_k(hits, 10)
    per_user["mrr@10"] = metrics.mrr_at_k(hits, 10)
    for name, values in per_user.items():
        sums[name] = sums.get(name, 0.0) + float(np.nansum(values))


def run_evaluation(
    data: EvalData,
    make_components: Callable[[], list[Component]] = default_components,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Fit, blend and evaluate the hybrid and every component alone on one protocol.

    Returns
    -------
    dict
        ``{"split", "results": {model: {metric: value}}, "n_users", "blend", "seconds"}``;
        ``n_users`` counts users with at least one relevant candidate, and ``blend`` gives
        the learned weights (on raw component scores) and where they came from.
    """
    started = time.perf_counter()
    # implicit, LightFM and scikit-learn parallelise themselves; OpenBLAS threads inside
    # their loops oversubscribe the cores (a full citeulike run is ~45% slower on two).
    with threadpool_limits(1, "blas"):
        fitted = fit_models(data, make_components, seed=seed, progress=progress)
        results = {}
        for name, model in fitted.models.items():
            results[name] = evaluate_model(model, data, stage=f"rank: {name}", progress=progress)
    cols = data.candidate_rows()
    n_users = int((np.diff(data.test[:, cols].indptr) > 0).sum())
    hybrid = fitted.hybrid
    return {
        "split": data.name,
        "results": results,
        "n_users": n_users,
        "blend": {
            "weights": dict(zip(hybrid.component_names, map(float, hybrid.weights), strict=True)),
            "source": fitted.weight_source,
        },
        "seconds": {
            **{k: round(v, 1) for k, v in fitted.seconds.items()},
            "total": round(time.perf_counter() - started, 1),
        },
    }
