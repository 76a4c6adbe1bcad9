"""LightFM (``rectools-lightfm``) on content features, for users and papers alike.

LightFM represents a user and a paper as the sums of the latent vectors of their features and
learns those vectors with a ranking loss (WARP). Here both sides are described by the same
content vocabulary, so nothing is tied to an id and new papers and new users are scored like
old ones:

- a paper's features are its nearest topics at several granularities (k-means on the
  embeddings; a paper belongs softly to its ``memberships`` nearest centroids per level,
  weighted by cosine), plus an optional block of extra sparse content features (tags,
  authors, categories, citations) when the caller has them (``PaperBlock.features``);
- a user's features are the recency-weighted mix of their liked papers' topic features plus
  their explicit interests' (clamped at 0, L1-normalised), so "less like this" removes mass.

Extra sparse features live on papers only: a user is described by topics, which keeps users'
feature rows short (LightFM's cost grows with them) and needs nothing from the history but
its embeddings.

Scoring needs numpy only: the user vector is ``[f_u U, 1]`` and the paper vector is
``[g_i V, g_i b]`` (``U``, ``V`` the learned feature embeddings, ``b`` the item feature
biases; LightFM's user bias does not change a user's ranking and is dropped). The leading 1
is 0 for a cold user, whose vector is all zero as the contract requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.cluster import KMeans

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


class LightFMComponent(Component):
    """LightFM with topic (and optional sparse content) features on both sides.

    Parameters
    ----------
    no_components : int
        Latent dimension.
    levels : sequence of int
        Number of k-means topics at each granularity (capped for small catalogues so each
        topic has about ``min_papers_per_topic`` papers).
    memberships : int
        Nearest topics per level a paper belongs to (soft, weighted by cosine); more than
        one keeps papers of one topic from tying exactly.
    min_papers_per_topic : int
        Cap on topics per level: about this many training papers per topic.
    max_user_features : int
        A user keeps only their strongest topics: LightFM's training cost grows with the
        length of users' feature rows, and the long tail of a user's topic mix is noise.
    epochs, learning_rate, loss, max_sampled, item_alpha, user_alpha : as in ``lightfm.LightFM``
    half_life_days, interest_weight : float
        Recency decay of events and weight of interests, as in ``ContentProfile``.
    random_state : int
        Seed of k-means and of LightFM. Training runs on one thread: LightFM's parallel
        (Hogwild) updates would make two fits on the same data differ.
    """

    name: ClassVar[str] = "lightfm"

    def __init__(
        self,
        *,
        no_components: int = 32,
        levels: Sequence[int] = (64, 256),
        memberships: int = 3,
        min_papers_per_topic: int = 4,
        max_user_features: int = 12,
        epochs: int = 4,
        learning_rate: float = 0.05,
        loss: str = "warp",
        max_sampled: int = 10,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        half_life_days: float = 30.0,
        interest_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        counts = (
            no_components,
            memberships,
            min_papers_per_topic,
            max_user_features,
            epochs,
            max_sampled,
        )
        if min(counts) < 1 or not levels or min(levels) < 1:
            raise ValueError(f"LightFMComponent: sizes must be >= 1, got {counts}, {levels}")
        if loss not in {"warp", "bpr", "warp-kos", "logistic"}:
            raise ValueError(f"LightFMComponent: unknown loss {loss!r}")
        self.no_components = int(no_components)
        self.levels = [int(level) for level in levels]
        self.memberships = int(memberships)
        self.min_papers_per_topic = int(min_papers_per_topic)
        self.max_user_features = int(max_user_features)
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.loss = loss
        self.max_sampled = int(max_sampled)
        self.item_alpha = float(item_alpha)
        self.user_alpha = float(user_alpha)
        self.half_life_days = float(half_life_days)
        self.interest_weight = float(interest_weight)
        self.random_state = int(random_state)
        self._centroids: list[NDArray[np.float32]] = []
        self._n_extra = 0
        self._user_embeddings: NDArray[np.float32] | None = None
        self._item_embeddings: NDArray[np.float32] | None = None
        self._item_biases: NDArray[np.float32] | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "no_components": self.no_components,
            "levels": self.levels,
            "memberships": self.memberships,
            "min_papers_per_topic": self.min_papers_per_topic,
            "max_user_features": self.max_user_features,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "loss": self.loss,
            "max_sampled": self.max_sampled,
            "item_alpha": self.item_alpha,
            "user_alpha": self.user_alpha,
            "half_life_days": self.half_life_days,
            "interest_weight": self.interest_weight,
            "random_state": self.random_state,
        }

    # --- fitting ------------------------------------------------------------------------
    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Find the topics, build both feature matrices and train LightFM on the snapshot."""
        from lightfm import LightFM  # imported here: scoring and loading need only numpy

        papers = snapshot.papers
        self._centroids = self._fit_topics(unit_rows(papers.embeddings))
        extra = papers.features
        self._n_extra = 0 if extra is None else int(extra.shape[1])
        item_features = self._paper_features(papers)
        user_features = self._user_features(snapshot.users, positive_only=True)
        interactions = _trainable(snapshot.interactions(), user_features)
        model = LightFM(
            no_components=self.no_components,
            learning_rate=self.learning_rate,
            loss=self.loss,
            max_sampled=self.max_sampled,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            random_state=np.random.RandomState(self.random_state),
        )
        model.fit(
            interactions,
            user_features=_with_width(user_features, item_features.shape[1]),
            item_features=item_features,
            epochs=self.epochs,
            num_threads=1,
        )
        self._user_embeddings = np.asarray(model.user_embeddings, np.float32)
        self._item_embeddings = np.asarray(model.item_embeddings, np.float32)
        self._item_biases = np.asarray(model.item_biases, np.float32)
        return self

    def _fit_topics(self, embeddings: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        cap = max(1, len(embeddings) // self.min_papers_per_topic)
        sizes = sorted({min(level, cap) for level in self.levels})
        return [self._kmeans(embeddings, size) for size in sizes]

    def _kmeans(self, embeddings: NDArray[np.float32], size: int) -> NDArray[np.float32]:
        if size == 1:
            return unit_rows(embeddings.mean(axis=0, keepdims=True) + 1e-6)
        kmeans = KMeans(size, n_init=1, max_iter=100, random_state=self.random_state)
        return unit_rows(kmeans.fit(embeddings).cluster_centers_)

    # --- features -----------------------------------------------------------------------
    def _topic_features(self, embeddings: NDArray[np.float32]) -> sp.csr_matrix:
        """Soft membership of each row in its nearest topics at every level."""
        unit = unit_rows(embeddings)
        blocks = [_soft_nearest(unit, centroids, self.memberships) for centroids in self._centroids]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def _paper_features(self, papers: PaperBlock) -> sp.csr_matrix:
        topics = self._topic_features(papers.embeddings)
        if not self._n_extra:
            return topics
        extra = papers.features
        if extra is None or extra.shape[1] != self._n_extra:
            got = "none" if extra is None else extra.shape[1]
            raise ValueError(
                f"LightFMComponent was fit with {self._n_extra} extra paper features; this "
                f"block has {got}. Score with PaperBlock.features built like the training ones"
            )
        return sp.hstack([topics, sp.csr_matrix(extra)], format="csr", dtype=np.float32)

    def _user_features(self, users: UserBlock, *, positive_only: bool = False) -> sp.csr_matrix:
        """Recency-weighted topic mix of liked (minus disliked) history and interests."""
        events = event_weight_matrix(users, self.half_life_days)
        if positive_only:
            events.data = np.maximum(events.data, 0.0)
        mix = events @ self._topic_features(users.history_embeddings)
        interests = interest_weight_matrix(users, self.interest_weight)
        mix = sp.csr_matrix(mix + interests @ self._topic_features(users.interest_embeddings))
        mix.data = np.maximum(mix.data, 0.0)
        mix = _largest_per_row(mix, self.max_user_features)
        total = np.asarray(mix.sum(axis=1)).ravel()
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        return sp.csr_matrix(sp.diags(scale) @ mix, dtype=np.float32)

    # --- scoring ------------------------------------------------------------------------
    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """``[f_u U, 1]``, shape (n_users, no_components + 1); zero for a cold user."""
        embeddings = require(self._user_embeddings, self)
        check_width(self, self._centroids[0].shape[1], users.d, "user")
        features = self._user_features(users)
        has_signal = (np.diff(features.indptr) > 0).astype(np.float32)
        latent = features @ embeddings[: features.shape[1]]
        return np.hstack([latent, has_signal[:, None]]).astype(np.float32)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """``[g_i V, g_i b]``, shape (n_papers, no_components + 1)."""
        embeddings = require(self._item_embeddings, self)
        biases = require(self._item_biases, self)
        check_width(self, self._centroids[0].shape[1], papers.d, "paper")
        features = self._paper_features(papers)
        return np.hstack([features @ embeddings, (features @ biases)[:, None]]).astype(np.float32)

    # --- state --------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """Centroids (all levels stacked), level sizes, feature embeddings and biases."""
        arrays: dict[str, NDArray[Any]] = {
            "centroids": np.vstack(self._centroids),
            "level_sizes": np.array([len(c) for c in self._centroids], np.int64),
            "user_embeddings": require(self._user_embeddings, self),
            "item_embeddings": require(self._item_embeddings, self),
            "item_biases": require(self._item_biases, self),
        }
        return arrays, {**self._config(), "n_extra_features": self._n_extra}

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild from ``get_state()``; raise ``ValueError`` on a missing or misshapen array."""
        owner = cls.__name__
        known = {**cls()._config(), "n_extra_features": 0}
        config = checked_config(owner, config, known)
        n_extra = int(config.pop("n_extra_features", 0))
        component = cls(**config)
        centroids = state_array(owner, arrays, "centroids", 2, np.float32)
        sizes = state_array(owner, arrays, "level_sizes", 1, np.int64)
        items = state_array(owner, arrays, "item_embeddings", 2, np.float32)
        users = state_array(owner, arrays, "user_embeddings", 2, np.float32)
        biases = state_array(owner, arrays, "item_biases", 1, np.float32)
        n_features = int(sizes.sum()) + n_extra
        if sizes.sum() != len(centroids) or items.shape != users.shape or len(items) != n_features:
            raise ValueError(f"{owner}: arrays do not fit together (level sizes {sizes})")
        if len(biases) != n_features:
            raise ValueError(f"{owner}: item_biases has {len(biases)} values, not {n_features}")
        component._centroids = np.split(centroids, np.cumsum(sizes)[:-1])
        component._n_extra = n_extra
        component._user_embeddings, component._item_embeddings = users, items
        component._item_biases = biases
        return component


def _soft_nearest(
    unit: NDArray[np.float32], centroids: NDArray[np.float32], memberships: int
) -> sp.csr_matrix:
    """Each row's ``memberships`` nearest centroids, weighted by (positive) cosine, sum 1."""
    n, size = len(unit), len(centroids)
    m = min(memberships, size)
    if n == 0:
        return sp.csr_matrix((0, size), dtype=np.float32)
    cosine = unit @ centroids.T
    nearest = np.argpartition(-cosine, m - 1, axis=1)[:, :m]
    weight = np.maximum(np.take_along_axis(cosine, nearest, axis=1), 0.0)
    total = weight.sum(axis=1, keepdims=True)
    weight = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    rows = np.repeat(np.arange(n), m)
    matrix = sp.csr_matrix((weight.ravel(), (rows, nearest.ravel())), shape=(n, size))
    matrix.eliminate_zeros()  # a paper with no content belongs to no topic
    return matrix


def _trainable(interactions: sp.csr_matrix, user_features: sp.csr_matrix) -> sp.coo_matrix:
    """Positive interactions as 0/1, without users who have no features.

    LightFM diverges (non-finite embeddings) when a user with interactions has an all-zero
    feature row, and such a user carries nothing it could learn from anyway.
    """
    binary = sp.csr_matrix(interactions > 0, dtype=np.float32)
    has_features = (np.diff(user_features.indptr) > 0).astype(np.float32)
    kept = sp.csr_matrix(sp.diags(has_features) @ binary)
    kept.eliminate_zeros()
    return kept.tocoo()


def _with_width(user_features: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """User features padded with zero columns to the paper feature width.

    LightFM keeps one embedding table per side; giving both sides the same columns lets the
    user table be sliced to the topic columns at scoring time.
    """
    pad = width - user_features.shape[1]
    if pad <= 0:
        return user_features
    return sp.hstack([user_features, sp.csr_matrix((user_features.shape[0], pad))], format="csr")


def _largest_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """``matrix`` with only the ``keep`` largest entries of each row (ties: lower column)."""
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    if not len(counts) or counts.max() <= keep:
        return matrix
    row = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.indices, -matrix.data, row))  # by row, then largest first
    rank = np.arange(len(order)) - matrix.indptr[row[order]]
    chosen = order[rank < keep]
    shape = matrix.shape
    return sp.csr_matrix((matrix.data[chosen], (row[chosen], matrix.indices[chosen])), shape=shape)
