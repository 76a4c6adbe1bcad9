"""Collaborative factors for brand-new papers: ALS, plus a ridge map from embeddings to factors.

ALS (``implicit``, weighted matrix factorisation) learns a factor vector for every paper that
somebody read. New papers have none, so a ridge regression ``M`` from (unit) embeddings to
those factors is learned on the warm papers, and every paper, new or not, is scored through
it: its paper vector is ``M e_i``. Mapping the warm papers too keeps old and new papers on
one scale (learned factors of rarely read papers are noisy and differently shrunk), and
keeps the contract's promise that paper vectors come from content.

A user's vector is re-solved at scoring time from their latest events (ALS "fold-in"), using
implicit's confidence model: a like with weight ``w`` says "preference 1 with confidence
``alpha * w``", a "less like this" says "preference 0 with confidence ``alpha * |w|``", and
every other paper says "preference 0 with confidence 1"::

    x_u = (Y^T Y + lam I + sum_e (c_e - 1) y_e y_e^T)^-1  sum_{e liked} c_e y_e

The history factors ``y_e`` are the learned ALS factors when the block says which papers its
history rows are (``IdentifiedUserBlock``) and the paper was in training, otherwise the
mapped ``M h_e``; explicit interests count as liked pseudo-papers with factors ``M i_j``.
The solve runs as conjugate gradients on the whole block at once (every step is a few
array operations over all events; nothing loops over users), so scoring stays one matrix
product after it. A user with no events and no interests gets a zero vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from recsys.recommender.base import (
    Component,
    PaperBlock,
    TrainingSnapshot,
    UserBlock,
    unit_rows,
)
from recsys.recommender.linear import (
    check_width,
    checked_config,
    event_weight_matrix,
    interest_weight_matrix,
    require,
    state_array,
)

# Conjugate-gradient residual (relative to the right-hand side) at which a user is solved.
_CG_TOLERANCE = 1e-6


class AlsRidgeMap(Component):
    """ALS factors for users, ridge-mapped ALS factors for papers (so new papers have them).

    Parameters
    ----------
    factors, regularization, alpha, iterations : as in ``implicit.als.AlternatingLeastSquares``
        ``alpha`` scales event weights into confidences.
    map_ridge : float
        Ridge strength of the embedding-to-factor map, relative to the mean eigenvalue of
        the warm papers' ``E^T E``.
    warm_shrinkage : float or None
        None (default): every paper is scored through the map. A number ``k``: a paper seen
        in training with ``n`` readers moves ``n / (n + k)`` of the way from its mapped to its
        learned factors. Off by default: a digest's candidates are new papers, and on
        citeulike-a P=10 it helped on the validation split but hurt on test
        (``docs/results.md``).
    half_life_days, interest_weight : float
        Recency decay of events and weight of explicit interests, as in ``ContentProfile``.
    random_state : int
        Seed of the factor initialisation.
    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        *,
        factors: int = 256,
        regularization: float = 0.1,
        alpha: float = 20.0,
        iterations: int = 10,
        map_ridge: float = 1.0,
        warm_shrinkage: float | None = None,
        half_life_days: float = 30.0,
        interest_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        positive = (regularization, alpha, map_ridge, half_life_days)
        if factors < 1 or iterations < 1 or not all(v > 0 for v in positive):
            raise ValueError(
                "AlsRidgeMap needs factors, iterations >= 1 and positive regularization, "
                f"alpha, map_ridge, half_life_days; got {factors}, {iterations}, {positive}"
            )
        if not interest_weight >= 0:
            raise ValueError(f"interest_weight must be >= 0, got {interest_weight}")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.map_ridge = float(map_ridge)
        self.warm_shrinkage = None if warm_shrinkage is None else float(warm_shrinkage)
        self.half_life_days = float(half_life_days)
        self.interest_weight = float(interest_weight)
        self.random_state = int(random_state)
        self._map: NDArray[np.float32] | None = None  # (d, factors)
        self._gram: NDArray[np.float32] | None = None  # Y^T Y over all training papers
        self._warm_ids: NDArray[np.int64] = np.zeros(0, np.int64)  # sorted
        self._warm_factors: NDArray[np.float32] = np.zeros((0, self.factors), np.float32)
        self._warm_counts: NDArray[np.float32] = np.zeros(0, np.float32)

    def _config(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "map_ridge": self.map_ridge,
            "warm_shrinkage": self.warm_shrinkage,
            "half_life_days": self.half_life_days,
            "interest_weight": self.interest_weight,
            "random_state": self.random_state,
        }

    # --- fitting ------------------------------------------------------------------------
    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Factorise the snapshot's interactions, then learn the embedding-to-factor map.

        Raises
        ------
        ValueError
            If no paper in the snapshot has an interaction (there is nothing to factorise).
        """
        interactions = snapshot.interactions(positive_only=False)
        item_factors = self._factorise(interactions)
        warm = np.flatnonzero(np.diff(interactions.tocsc().indptr) > 0)
        if not len(warm):
            raise ValueError("AlsRidgeMap.fit: the snapshot has no interactions to learn from")
        embeddings = unit_rows(snapshot.papers.embeddings)
        self._map = _ridge(embeddings[warm], item_factors[warm], self.map_ridge)
        self._gram = (item_factors.T @ item_factors).astype(np.float32)
        ids = snapshot.papers.paper_ids[warm]
        order = np.argsort(ids)
        self._warm_ids, self._warm_factors = ids[order], item_factors[warm][order]
        counts = np.diff(sp.csr_matrix(interactions > 0).tocsc().indptr)[warm]
        self._warm_counts = counts[order].astype(np.float32)
        return self

    def _factorise(self, interactions: sp.csr_matrix) -> NDArray[np.float32]:
        # Imported here: scoring and loading need only numpy, not implicit.
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit parallelises over users itself; BLAS threads inside its loops would
        # oversubscribe the cores (implicit warns about exactly this).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
            )
            model.fit(interactions.astype(np.float32), show_progress=False)
        return np.asarray(model.item_factors, dtype=np.float32)

    # --- scoring ------------------------------------------------------------------------
    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """Mapped factors ``M e_i``, shape (n_papers, factors).

        With ``warm_shrinkage`` set, papers seen in training move towards their learned
        factors (see the class docstring).
        """
        mapping = require(self._map, self)
        check_width(self, len(mapping), papers.d, "paper")
        mapped = unit_rows(papers.embeddings) @ mapping
        if self.warm_shrinkage is None or not len(self._warm_ids):
            return mapped
        slot, known = self._lookup(papers.paper_ids)
        n = self._warm_counts[slot[known]][:, None]
        share = n / (n + self.warm_shrinkage)
        mapped[known] += share * (self._warm_factors[slot[known]] - mapped[known])
        return mapped

    def embedding_map(self, d: int) -> NDArray[np.float32] | None:
        """The ridge map, unless ``warm_shrinkage`` makes read papers depart from it."""
        return require(self._map, self) if self.warm_shrinkage is None else None

    def _lookup(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Row of each id among the warm papers, and whether it is one of them."""
        slot = np.clip(np.searchsorted(self._warm_ids, ids), 0, len(self._warm_ids) - 1)
        return slot, self._warm_ids[slot] == ids

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """Folded-in user factors, shape (n_users, factors); zero for a cold user."""
        mapping = require(self._map, self)
        check_width(self, len(mapping), users.d, "user")
        weights, factors = self._pseudo_events(users, mapping)
        return _fold_in(weights, factors, require(self._gram, self), self.regularization)

    def _pseudo_events(
        self, users: UserBlock, mapping: NDArray[np.float32]
    ) -> tuple[sp.csr_matrix, NDArray[np.float32]]:
        """Confidence-weighted (user, paper) entries over history and interest factors."""
        history = self._history_factors(users, mapping)
        interests = unit_rows(users.interest_embeddings) @ mapping
        events = event_weight_matrix(users, self.half_life_days)
        liked = interest_weight_matrix(users, self.interest_weight)
        weights = sp.hstack([events, liked], format="csr") * self.alpha
        return weights, np.vstack([history, interests])

    def _history_factors(
        self, users: UserBlock, mapping: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """Learned factors for history papers seen in training, mapped ones for the rest."""
        factors = unit_rows(users.history_embeddings) @ mapping
        ids = users.history_ids
        if ids is None or not len(self._warm_ids):
            return factors
        slot, known = self._lookup(ids)
        factors[known] = self._warm_factors[slot[known]]
        return factors

    # --- state --------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """The map, the factor Gram matrix and the warm papers' ids, factors and readers."""
        arrays = {
            "map": require(self._map, self),
            "gram": require(self._gram, self),
            "warm_ids": self._warm_ids,
            "warm_factors": self._warm_factors,
            "warm_counts": self._warm_counts,
        }
        return arrays, self._config()

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild from ``get_state()``; raise ``ValueError`` on a missing or misshapen array."""
        owner = cls.__name__
        component = cls(**checked_config(owner, config, cls()._config()))
        mapping = state_array(owner, arrays, "map", 2, np.float32)
        gram = state_array(owner, arrays, "gram", 2, np.float32)
        ids = state_array(owner, arrays, "warm_ids", 1, np.int64)
        warm = state_array(owner, arrays, "warm_factors", 2, np.float32)
        counts = state_array(owner, arrays, "warm_counts", 1, np.float32)
        k = component.factors
        if mapping.shape[1] != k or gram.shape != (k, k) or warm.shape != (len(ids), k):
            raise ValueError(f"{owner}: arrays do not match factors={k}")
        if counts.shape != ids.shape:
            raise ValueError(f"{owner}: warm_counts must have one value per warm paper")
        component._map, component._gram = mapping, gram
        component._warm_ids, component._warm_factors = ids, warm
        component._warm_counts = counts
        return component


def _ridge(x: NDArray[np.float32], y: NDArray[np.float32], ridge: float) -> NDArray[np.float32]:
    """Ridge weights ``W`` for ``y ~ x W``, with ``ridge`` relative to mean eigenvalue."""
    x64 = x.astype(np.float64)
    gram = x64.T @ x64
    d = gram.shape[0]
    lam = ridge * max(float(np.trace(gram)) / d, 1e-12)
    return np.linalg.solve(gram + lam * np.eye(d), x64.T @ y).astype(np.float32)


def _fold_in(
    confidence: sp.csr_matrix,
    factors: NDArray[np.float32],
    gram: NDArray[np.float32],
    regularization: float,
) -> NDArray[np.float32]:
    """Solve every user's ALS least-squares problem by conjugate gradients, all at once.

    ``confidence`` (n_users, n_sources) holds signed confidences: > 0 liked, < 0 disliked.
    The system matrix of user u is ``A_u = G + lam I + sum_e (|c_e| - 1) f_e f_e^T``; it is
    symmetric positive definite when confidences are >= 1, so CG converges in at most
    ``factors`` steps. Each user's scalars are their own, so a block solves exactly as its
    users would one by one.
    """
    coo = confidence.tocoo()
    user, source, signed = coo.row, coo.col, coo.data
    n_users, k = confidence.shape[0], factors.shape[1]
    event_factors = factors[source].astype(np.float64)
    # implicit's (c - 1): the "1" every paper gets is already in the Gram. Clamped at 0 so a
    # faint, old event cannot make the system indefinite.
    extra = np.maximum(np.abs(signed) - 1.0, 0.0)
    shape = (n_users, len(user))
    scatter = sp.csr_matrix((np.ones(len(user)), (user, np.arange(len(user)))), shape=shape)
    system = gram.astype(np.float64) + regularization * np.eye(k)

    def apply(x: NDArray[np.float64]) -> NDArray[np.float64]:
        along = np.einsum("ek,ek->e", event_factors, x[user])
        return x @ system + scatter @ (event_factors * (extra * along)[:, None])

    rhs = scatter @ (event_factors * np.maximum(signed, 0.0)[:, None])
    return _conjugate_gradient(apply, rhs, max_steps=k).astype(np.float32)


def _conjugate_gradient(
    apply: Any, rhs: NDArray[np.float64], max_steps: int
) -> NDArray[np.float64]:
    """Row-wise CG for ``A_u x_u = rhs_u``, given ``apply(X) = [A_u x_u]_u``.

    Each row stops on its own once its residual is small, so rows never influence each other.
    """
    x = np.zeros_like(rhs)
    residual = rhs.copy()
    direction = residual.copy()
    power = np.einsum("uk,uk->u", residual, residual)
    target = (_CG_TOLERANCE**2) * power
    done = power == 0  # a user with nothing liked has the zero solution
    for _ in range(max_steps + 1):
        active = ~done
        if not active.any():
            break
        ad = apply(direction)
        curvature = np.einsum("uk,uk->u", direction, ad)
        step = np.where(active, power / np.where(active, curvature, 1.0), 0.0)
        x += step[:, None] * direction
        residual -= step[:, None] * ad
        new_power = np.einsum("uk,uk->u", residual, residual)
        done |= new_power <= target
        ratio = np.where(active, new_power / np.where(power > 0, power, 1.0), 0.0)
        direction = residual + ratio[:, None] * direction
        power = new_power
    return x
