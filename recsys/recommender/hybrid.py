"""The hybrid: a weighted blend of components that is still one dot product.

Every component scores ``U_c @ P_c.T``, so the blend ``sum_c w_c U_c @ P_c.T`` equals
``[w_1 U_1, ..., w_n U_n] @ [P_1, ..., P_n].T``: the hybrid's user vector is the
concatenation of its components' weighted user vectors and its paper vector the concatenation
of their paper vectors. A digest for a block of users is then one matrix product and one
top-k (DESIGN.md, "The recommender"). The popularity term fits the same mould: a
``PopularityPrior(n_topics=1)`` contributes one constant-1 user column (0 for a cold user)
times the paper prior.

Most components' paper vectors are a fixed linear map of the unit embeddings (content and
the per-user linear model use them as they are; ALS maps them with its ridge map), so they
are scored in the embedding space itself (``Component.embedding_map``): one d-wide block
for all of them, whatever the number of ALS factors. Only LightFM and the popularity prior
add columns of their own. That keeps the product narrow, which is what a digest run for a
million users pays for.

The weights are learned by :func:`fit_blend_weights` on a validation split held out from the
training data, then stored with the model (``get_state``), so a loaded hybrid scores exactly
as the one that was evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys.recommender.als import AlsRidgeMap
from recsys.recommender.base import (
    Component,
    PaperBlock,
    TrainingSnapshot,
    UserBlock,
    load_component,
    unit_rows,
)
from recsys.recommender.content import ContentProfile
from recsys.recommender.lightfm_component import LightFMComponent
from recsys.recommender.linear import PerUserLinear
from recsys.recommender.popularity import PopularityPrior

# Multipliers tried for one weight at a time by ``fit_blend_weights``: from "drop it" to
# "four times as loud", in factors of two. Coarse on purpose: a validation split of a few
# hundred users cannot tell finer steps from noise.
BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
# Up to this many relevant papers per validation user, recall is counted from their ranks
# (one pass each) rather than from a partial sort of every row.
_FEW_RELEVANT = 16


def default_components() -> list[Component]:
    """The components of the default hybrid, in blend order."""
    return [
        ContentProfile(),
        PerUserLinear(),
        AlsRidgeMap(),
        LightFMComponent(),
        PopularityPrior(n_topics=1),
    ]


class Hybrid(Component):
    """A weighted blend of components, scored as one dot product.

    Parameters
    ----------
    components : sequence of Component, optional
        Components with distinct ``name``\\ s; defaults to :func:`default_components`.
    weights : array_like of float, optional
        One non-negative weight per component (default: all 1). Set them from
        :func:`fit_blend_weights`.

    Raises
    ------
    ValueError
        For duplicate component names, a nested hybrid, or weights that are negative,
        non-finite, all zero or of the wrong length.
    """

    name: ClassVar[str] = "hybrid"

    def __init__(
        self,
        components: Sequence[Component] | None = None,
        weights: ArrayLike | None = None,
    ) -> None:
        self.components = list(default_components() if components is None else components)
        names = [component.name for component in self.components]
        if len(set(names)) != len(names) or "hybrid" in names or not names:
            raise ValueError(f"Hybrid needs distinct, non-hybrid components; got {names}")
        self.weights = _check_weights(weights, len(self.components))

    @property
    def component_names(self) -> list[str]:
        """The components' names, in blend order."""
        return [component.name for component in self.components]

    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Fit every component on ``snapshot`` (weights are kept)."""
        for component in self.components:
            component.fit(snapshot)
        return self

    def with_weights(self, weights: ArrayLike) -> Self:
        """Set new blend weights (e.g. from ``fit_blend_weights``) and return ``self``."""
        self.weights = _check_weights(weights, len(self.components))
        return self

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """``[sum_f w_f U_f M_f^T, w_o U_o ...]``; zero for a cold user, as each ``U_c`` is.

        Components with an ``embedding_map`` (content, linear, ALS) are folded into one
        block in the embedding space; the others (LightFM, popularity) follow, in blend
        order. Components weighted 0 are left out of both sides.
        """
        live = self._live(users.d)
        folded = np.zeros((users.n_users, users.d), np.float32)
        blocks = []
        for weight, component, mapping in live:
            vectors = np.float32(weight) * component.user_vectors(users)
            if mapping is None:
                blocks.append(vectors)
            else:
                folded += vectors @ mapping.T
        if _folds(live):
            blocks.insert(0, folded)
        return np.hstack(blocks).astype(np.float32)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """``[unit embeddings, P_o ...]``, matching :meth:`user_vectors` column for column."""
        live = self._live(papers.d)
        blocks = [
            component.paper_vectors(papers) for _, component, mapping in live if mapping is None
        ]
        if _folds(live):
            blocks.insert(0, unit_rows(papers.embeddings))
        return np.hstack(blocks).astype(np.float32)

    def _live(self, d: int) -> list[tuple[float, Component, NDArray[np.float32] | None]]:
        """``(weight, component, embedding map or None)`` of every non-zero-weight component."""
        return [
            (float(weight), component, component.embedding_map(d))
            for weight, component in zip(self.weights, self.components, strict=True)
            if weight
        ]

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """Component arrays under ``"<position>.<name>.<array>"``; names, configs and weights."""
        arrays: dict[str, NDArray[Any]] = {}
        parts = []
        for position, component in enumerate(self.components):
            component_arrays, config = component.get_state()
            prefix = f"{position}.{component.name}."
            arrays.update({prefix + key: value for key, value in component_arrays.items()})
            parts.append({"name": component.name, "config": config})
        return arrays, {"components": parts, "weights": [float(w) for w in self.weights]}

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild every component with ``load_component``, then the blend.

        Raises
        ------
        ValueError
            If the config is not a hybrid's, or an array belongs to no listed component.
        """
        parts, weights = config.get("components"), config.get("weights")
        if (
            not isinstance(parts, list)
            or not isinstance(weights, list)
            or set(config)
            != {
                "components",
                "weights",
            }
        ):
            raise ValueError("Hybrid config: expected exactly 'components' and 'weights' lists")
        components, used = [], 0
        for position, part in enumerate(parts):
            prefix = f"{position}.{part['name']}."
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            used += len(own)
            components.append(load_component(part["name"], own, part["config"]))
        if used != len(arrays):
            raise ValueError("Hybrid state: some arrays belong to no listed component")
        return cls(components, weights)


def _folds(live: Sequence[tuple[float, Component, NDArray[np.float32] | None]]) -> bool:
    """Whether any live component is scored through the folded embedding block."""
    return any(mapping is not None for _, _, mapping in live)


def _check_weights(weights: ArrayLike | None, n: int) -> NDArray[np.float64]:
    values = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"Hybrid: expected {n} weights, one per component, got {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any() or not values.any():
        raise ValueError(f"Hybrid: weights must be finite, >= 0 and not all 0; got {values}")
    return values


# --- learning the weights ------------------------------------------------------------------
def score_spread(scores: NDArray[np.float32], exclude: sp.csr_matrix | None = None) -> float:
    """Standard deviation of a block of scores over its rankable entries (1.0 if constant).

    Components score on unrelated scales (cosines, ALS preferences, predicted readers);
    dividing by the spread puts them on one footing before weights are compared.
    """
    values = np.asarray(scores, dtype=np.float64)
    if exclude is not None and exclude.nnz:
        mask = np.ones(values.shape, bool)
        coo = exclude.tocoo()
        mask[coo.row, coo.col] = False
        values = values[mask]
    spread = float(np.std(values)) if values.size else 0.0
    return spread if spread > 0 else 1.0


def fit_blend_weights(
    scores: Sequence[NDArray[np.float32]],
    relevant: sp.csr_matrix,
    *,
    exclude: sp.csr_matrix | None = None,
    ks: Sequence[int] = (50, 100, 300),
    ndcg_k: int = 10,
    grid: Sequence[float] = BLEND_GRID,
    rounds: int = 2,
) -> NDArray[np.float64]:
    """Blend weights that maximise the validation metrics we report, by coordinate ascent.

    The objective is the mean of recall@k for each k in ``ks`` and NDCG@``ndcg_k``, each
    averaged over users with a relevant candidate: the metrics the evaluation reports, so
    weights are not bought with a worse top of the list. Starts from equal weights on
    spread-normalised scores (``1 / score_spread``), then, for ``rounds`` passes, tries each
    weight times every multiplier in ``grid`` and keeps the best (ties keep the current
    weight, so a component is only dropped if dropping it helps).

    Parameters
    ----------
    scores : sequence of NDArray[np.float32], each (n_users, n_candidates)
        Each component's scores for the validation users against the validation candidates.
    relevant : scipy.sparse.csr_matrix, shape (n_users, n_candidates)
        The held-out (user, paper) pairs the blend should rank high.
    exclude : scipy.sparse.csr_matrix, optional
        Pairs that are not rankable (the users' own training papers).
    ks : sequence of int
        Recall cutoffs.
    ndcg_k : int
        NDCG cutoff.
    grid : sequence of float
        Multipliers tried for one weight at a time.
    rounds : int
        Passes over the components.

    Returns
    -------
    NDArray[np.float64], shape (n_components,)
        Weights to apply to the components' raw scores (not to the normalised ones).

    Raises
    ------
    ValueError
        If the blocks differ in shape or no validation user has a relevant candidate.
    """
    blocks = [np.asarray(block, dtype=np.float32) for block in scores]
    if not blocks or any(block.shape != relevant.shape for block in blocks):
        raise ValueError(f"fit_blend_weights: every block must have shape {relevant.shape}")
    weights = np.array([1.0 / score_spread(block, exclude) for block in blocks])
    objective = _BlendObjective(blocks, relevant, exclude, ks, ndcg_k)
    best = objective(weights)
    for _ in range(rounds):
        for c in range(len(blocks)):
            for multiplier in grid:
                trial = weights.copy()
                trial[c] *= multiplier
                value = objective(trial) if trial.any() else -np.inf
                if value > best:
                    best, weights = value, trial
    return weights


class _BlendObjective:
    """Mean of recall@ks and NDCG@k of a weighted blend, on one fixed validation block.

    Every weight trial re-ranks the block, so with many candidates each user's ranking is
    restricted to a shortlist: the union of every component's top ``shortlist`` papers. A
    paper outside all of them would need to rank below 600th (say) in every component yet
    reach a blend's top 300, which a weighted sum of those scores does not allow in practice;
    relevant papers outside the shortlist still count as misses.
    """

    def __init__(
        self,
        blocks: Sequence[NDArray[np.float32]],
        relevant: sp.csr_matrix,
        exclude: sp.csr_matrix | None,
        ks: Sequence[int],
        ndcg_k: int,
        shortlist: int = 600,
    ) -> None:
        wanted = np.asarray(sp.csr_matrix(relevant).toarray() != 0)
        self.n_relevant = wanted.sum(axis=1)
        self.users = self.n_relevant > 0
        if not self.users.any():
            raise ValueError("fit_blend_weights: no validation user has a relevant candidate")
        blocked = np.zeros(wanted.shape, bool) if exclude is None else exclude.toarray() != 0
        n_candidates = wanted.shape[1]
        self.ks = [min(k, n_candidates) for k in ks]
        self.depth = max(*self.ks, min(ndcg_k, n_candidates))
        discount = 1.0 / np.log2(np.arange(2, self.depth + 2))
        discount[min(ndcg_k, n_candidates) :] = 0.0
        self.discount = discount
        ideal = np.concatenate([[0.0], np.cumsum(discount)])
        self.ideal = ideal[np.minimum(self.n_relevant, min(ndcg_k, n_candidates))]
        shortlist = max(shortlist, self.depth)
        if n_candidates <= len(blocks) * shortlist:
            self.blocks, self.relevant, self.blocked = list(blocks), wanted, blocked
        else:
            cols, repeated = _shortlist(blocks, blocked, shortlist)
            self.blocks = [np.take_along_axis(block, cols, axis=1) for block in blocks]
            self.relevant = np.take_along_axis(wanted, cols, axis=1) & ~repeated
            self.blocked = np.take_along_axis(blocked, cols, axis=1) | repeated
        self._index_relevant()

    def _index_relevant(self) -> None:
        """Column of each user's relevant papers, padded; used when users have only a few."""
        per_user = self.relevant.sum(axis=1)
        width = int(per_user.max()) if len(per_user) else 0
        self.few = 0 < width <= _FEW_RELEVANT
        self.slots = np.argsort(~self.relevant, axis=1, kind="stable")[:, : max(width, 1)]
        self.slot_live = np.take_along_axis(self.relevant, self.slots, axis=1)

    def __call__(self, weights: NDArray[np.float64]) -> float:
        blend = np.zeros(self.blocks[0].shape, np.float32)
        for weight, block in zip(weights, self.blocks, strict=True):
            if weight:
                blend += np.float32(weight) * block
        blend[self.blocked] = -np.inf
        hits = self._hits_by_rank(blend) if self.few else self._hits_by_top_k(blend)
        found = np.cumsum(hits, axis=1)[:, [k - 1 for k in self.ks]]
        recall = found / np.maximum(self.n_relevant, 1)[:, None]
        ndcg = (hits @ self.discount) / np.where(self.ideal > 0, self.ideal, 1.0)
        per_user = np.column_stack([recall, ndcg])[self.users]
        return float(per_user.mean())

    def _hits_by_top_k(self, blend: NDArray[np.float32]) -> NDArray[np.float64]:
        """(n_users, depth) 1 where the paper at that rank is relevant: one partial sort."""
        cols = np.argpartition(-blend, self.depth - 1, axis=1)[:, : self.depth]
        order = np.argsort(-np.take_along_axis(blend, cols, axis=1), axis=1, kind="stable")
        ranked = np.take_along_axis(cols, order, axis=1)
        return np.take_along_axis(self.relevant, ranked, axis=1).astype(np.float64)

    def _hits_by_rank(self, blend: NDArray[np.float32]) -> NDArray[np.float64]:
        """The same matrix from each relevant paper's rank (papers scoring strictly higher).

        Cheaper than a partial sort when users have only a few relevant papers (a held-out
        tail of two or three papers each): one comparison pass per relevant slot.
        """
        scores = np.take_along_axis(blend, self.slots, axis=1)
        hits = np.zeros((len(blend), self.depth + 1))
        rows = np.arange(len(blend))
        for slot in range(self.slots.shape[1]):
            rank = np.minimum((blend > scores[:, slot : slot + 1]).sum(axis=1), self.depth)
            np.add.at(hits, (rows, rank), self.slot_live[:, slot])
        return hits[:, : self.depth]


def _shortlist(
    blocks: Sequence[NDArray[np.float32]], blocked: NDArray[np.bool_], size: int
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Per row, every block's top ``size`` columns (sorted), and which of them are repeats."""
    tops = []
    for block in blocks:
        masked = np.where(blocked, -np.inf, block)
        tops.append(np.argpartition(-masked, size - 1, axis=1)[:, :size])
    cols = np.sort(np.hstack(tops), axis=1)
    repeated = np.zeros(cols.shape, bool)
    repeated[:, 1:] = cols[:, 1:] == cols[:, :-1]
    return cols, repeated
