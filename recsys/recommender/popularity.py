"""The popularity / recency prior: how many readers a paper will find, within a user's topics.

A paper's prior is its popularity predicted from its content (a ridge regression of
``log(1 + readers)`` on the embeddings of the training papers), so a brand-new paper that
looks like the papers many people read gets a high prior before anyone has clicked it; then
it halves every ``recency_half_life_days``. Papers are grouped into topics (k-means
on the embeddings) and a user's vector is the share of their signed, recency-weighted history
and interests in each topic, so::

    score(u, i) = share_u[topic(i)] * prior(i)

is "the most popular new papers in your topics". A disliked topic gets a negative share, so
its papers rank below unrelated ones. With ``n_topics=1`` it is the global prior: a
constant-1 user column (0 for a cold user) times the paper prior, which is how the hybrid
adds popularity to its one dot product. A user with no events and no interests gets a zero
vector, as the contract requires.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class PopularityPrior(Component):
    """Content-predicted popularity with a recency decay, shared out by topic.

    Parameters
    ----------
    n_topics : int
        Number of k-means topics; 1 gives the global (unpersonalised) prior.
    min_papers_per_topic : int
        Fewer topics are used when the catalogue is small, so that each has about this many
        papers: a topic's popularity estimated from two papers would be noise.
    ridge : float
        Ridge strength of the popularity regression, relative to the mean eigenvalue of
        ``E^T E``.
    recency_half_life_days : float
        A paper's prior halves every this many days of age: a digest is about new papers,
        and last week's hit is old news.
    half_life_days, interest_weight : float
        Recency decay of a user's events and weight of their interests, as in
        ``ContentProfile``.
    random_state : int
        Seed of k-means.
    """

    name: ClassVar[str] = "popularity"

    def __init__(
        self,
        *,
        n_topics: int = 16,
        min_papers_per_topic: int = 4,
        ridge: float = 1.0,
        recency_half_life_days: float = 30.0,
        half_life_days: float = 30.0,
        interest_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        positive = (ridge, recency_half_life_days, half_life_days)
        if n_topics < 1 or min_papers_per_topic < 1 or not all(v > 0 for v in positive):
            raise ValueError(
                "PopularityPrior needs n_topics, min_papers_per_topic >= 1 and positive ridge "
                f"and half-lives; got {n_topics}, {min_papers_per_topic}, {positive}"
            )
        if not interest_weight >= 0:
            raise ValueError(f"interest_weight must be >= 0, got {interest_weight}")
        self.n_topics = int(n_topics)
        self.min_papers_per_topic = int(min_papers_per_topic)
        self.ridge = float(ridge)
        self.recency_half_life_days = float(recency_half_life_days)
        self.half_life_days = float(half_life_days)
        self.interest_weight = float(interest_weight)
        self.random_state = int(random_state)
        self._centroids: NDArray[np.float32] | None = None
        self._coef: NDArray[np.float32] | None = None  # (d + 1,): weights, then intercept

    def _config(self) -> dict[str, Any]:
        return {
            "n_topics": self.n_topics,
            "min_papers_per_topic": self.min_papers_per_topic,
            "ridge": self.ridge,
            "recency_half_life_days": self.recency_half_life_days,
            "half_life_days": self.half_life_days,
            "interest_weight": self.interest_weight,
            "random_state": self.random_state,
        }

    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Regress log popularity on the embeddings and find the topics."""
        embeddings = unit_rows(snapshot.papers.embeddings)
        readers = np.asarray(snapshot.interactions().sum(axis=0)).ravel()
        self._coef = _ridge_with_intercept(embeddings, np.log1p(readers), self.ridge)
        self._centroids = self._fit_topics(embeddings)
        return self

    def _fit_topics(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        n_topics = min(self.n_topics, max(1, len(embeddings) // self.min_papers_per_topic))
        if n_topics == 1:
            return np.ones((1, embeddings.shape[1]), np.float32)  # every paper in one topic
        kmeans = KMeans(n_topics, n_init=3, random_state=self.random_state).fit(embeddings)
        return unit_rows(kmeans.cluster_centers_)

    def prior(self, papers: PaperBlock) -> NDArray[np.float32]:
        """Predicted readers (``exp`` of the predicted ``log(1 + readers)``), recency-decayed.

        Returns
        -------
        NDArray[np.float32], shape (n_papers,), all > 0.
        """
        coef = require(self._coef, self)
        check_width(self, len(coef) - 1, papers.d, "paper")
        log_readers = unit_rows(papers.embeddings) @ coef[:-1] + coef[-1]
        decay = 0.5 ** (papers.age_days / self.recency_half_life_days)
        return (np.exp(log_readers) * decay).astype(np.float32)

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """Each user's signed share of each topic, shape (n_users, n_topics).

        Shares are divided by their total absolute value, so a liked topic has a positive
        share and a disliked one a negative share (its papers rank below unrelated ones).
        With one topic the share is 1 for any user with events or interests.
        """
        centroids = require(self._centroids, self)
        check_width(self, centroids.shape[1], users.d, "user")
        events = event_weight_matrix(users, self.half_life_days)
        interests = interest_weight_matrix(users, self.interest_weight)
        share = (events @ self._topics(users.history_embeddings)).toarray()
        share += (interests @ self._topics(users.interest_embeddings)).toarray()
        if len(centroids) == 1:
            share = np.abs(share)
        total = np.abs(share).sum(axis=1, keepdims=True)
        out = np.zeros_like(share)
        return np.divide(share, total, out=out, where=total > 1e-9).astype(np.float32)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """The paper's prior in its topic's column, zero elsewhere; shape (n_papers, n_topics)."""
        return self._topics(papers.embeddings).multiply(self.prior(papers)[:, None]).toarray()

    def _topics(self, embeddings: NDArray[np.float32]) -> sp.csr_matrix:
        """One-hot nearest topic per row; an all-zero embedding (no content) has no topic."""
        centroids = require(self._centroids, self)
        unit = unit_rows(embeddings)
        topic = np.argmax(unit @ centroids.T, axis=1) if len(unit) else np.zeros(0, np.intp)
        has_content = np.abs(unit).sum(axis=1) > 0
        rows = np.flatnonzero(has_content)
        shape = (len(unit), len(centroids))
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, topic[rows])), shape=shape)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """``{"centroids": (n_topics, d), "coef": (d + 1,)}`` and the constructor arguments."""
        arrays = {"centroids": require(self._centroids, self), "coef": require(self._coef, self)}
        return arrays, self._config()

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild from ``get_state()``; raise ``ValueError`` on a missing or misshapen array."""
        owner = cls.__name__
        component = cls(**checked_config(owner, config, cls()._config()))
        centroids = state_array(owner, arrays, "centroids", 2, np.float32)
        coef = state_array(owner, arrays, "coef", 1, np.float32)
        if len(coef) != centroids.shape[1] + 1:
            raise ValueError(f"{owner}: coef has {len(coef)} values for d={centroids.shape[1]}")
        component._centroids, component._coef = centroids, coef
        return component


def _ridge_with_intercept(
    x: NDArray[np.float32], y: NDArray[np.float64], ridge: float
) -> NDArray[np.float32]:
    """Ridge weights for ``y ~ x w + b`` with an unpenalised intercept; returns ``[w, b]``."""
    x64 = x.astype(np.float64)
    x_mean, y_mean = x64.mean(axis=0), float(y.mean())
    centred = x64 - x_mean
    gram = centred.T @ centred
    d = gram.shape[0]
    lam = ridge * max(float(np.trace(gram)) / d, 1e-12)
    weights = np.linalg.solve(gram + lam * np.eye(d), centred.T @ (y - y_mean))
    return np.append(weights, y_mean - x_mean @ weights).astype(np.float32)
