"""The per-user linear model: each user's own ridge regression on paper embeddings.

For user u with signed, recency-decayed labels y_u over the training papers (+ for a click or
like, - for "less like this", 0 for every other paper), the ridge solution is::

    w_u = (E^T E + lam I)^-1 E^T y_u

``E^T E`` does not depend on the user, so one (d, d) matrix learned at fit time turns every
user's labelled history into their weights at once: ``W = (Y E) (E^T E + lam I)^-1`` is one
matrix product for a whole block, however many users it holds. Compared with the content
profile (the plain mean ``E^T y_u``), the shared inverse down-weights directions that many
papers share and up-weights the rare ones that distinguish a user's papers from the rest.

A handful of labels cannot support a per-user fit, so users with fewer than ``min_labels``
labelled papers fall back to their content profile (``ContentProfile``), which is what they
would get anyway; cold users get zero, as the contract requires.

The helpers ``event_weight_matrix`` and ``interest_weight_matrix`` turn a ``UserBlock``'s
events and interests into sparse weight matrices; the ALS, LightFM and popularity components
share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.recommender.base import (
    Component,
    PaperBlock,
    TrainingSnapshot,
    UserBlock,
    unit_rows,
)
from recsys.recommender.content import ContentProfile

# Below this norm a weight vector is rounding noise (e.g. a like and a dislike of one paper);
# normalising it would turn noise into a confident direction.
_MIN_NORM = 1e-6


def event_weight_matrix(users: UserBlock, half_life_days: float) -> sp.csr_matrix:
    """(n_users, n_hist) signed event weights, halved every ``half_life_days``, summed per paper.

    Ages are measured from each user's newest event, as ``ContentProfile`` does: that keeps a
    years-old history from underflowing to zero, and the newest event keeps its full weight.
    Repeated events on a paper add up; a like and a dislike of one paper cancel.
    """
    user, age = users.event_user, users.event_age_days.astype(np.float64)
    newest = np.full(users.n_users, np.inf)
    np.minimum.at(newest, user, age)
    decayed = users.event_weight * 0.5 ** ((age - newest[user]) / half_life_days)
    shape = (users.n_users, len(users.history_embeddings))
    matrix = sp.csr_matrix((decayed, (user, users.event_item)), shape=shape, dtype=np.float64)
    matrix.eliminate_zeros()
    return matrix


def interest_weight_matrix(users: UserBlock, weight: float) -> sp.csr_matrix:
    """(n_users, n_interests) matrix averaging each user's interests, scaled by ``weight``."""
    user = users.interest_user
    count = np.bincount(user, minlength=users.n_users)[user]
    shape = (users.n_users, len(user))
    return sp.csr_matrix((weight / count, (user, np.arange(len(user)))), shape, dtype=np.float64)


def check_width(component: Component, expected: int, got: int, what: str) -> None:
    """Raise ``ValueError`` when embeddings are not as wide as those the component was fit on."""
    if expected != got:
        raise ValueError(
            f"{type(component).__name__}: {what} embeddings have {got} columns but the model "
            f"was fit on {expected}; were they embedded by another model?"
        )


def require(value: NDArray[Any] | None, component: Component) -> NDArray[Any]:
    """``value``, or a ``ValueError`` saying the component must be fit first."""
    if value is None:
        raise ValueError(f"{type(component).__name__} is not fitted; call fit() or from_state()")
    return value


def state_array(
    owner: str, arrays: Mapping[str, NDArray[Any]], key: str, ndim: int, dtype: type[Any]
) -> NDArray[Any]:
    """``arrays[key]`` as ``dtype`` with ``ndim`` dimensions, or a ``ValueError`` naming it."""
    if key not in arrays:
        raise ValueError(f"{owner}: state is missing the array {key!r}")
    value = np.asarray(arrays[key])
    if value.ndim != ndim or value.dtype.kind not in "fiu":
        raise ValueError(f"{owner}: {key!r} must be a {ndim}-D numeric array, got {value.shape}")
    return value.astype(dtype, copy=False)


def checked_config(
    owner: str, config: Mapping[str, Any], known: Mapping[str, Any]
) -> dict[str, Any]:
    """``config`` as a dict, or a ``ValueError`` listing keys the component does not take."""
    unknown = set(config) - set(known)
    if unknown:
        raise ValueError(f"{owner} config: unknown keys {sorted(unknown)}")
    return dict(config)


class PerUserLinear(Component):
    """Per-user ridge regression on paper embeddings, solved for a block in one product.

    Parameters
    ----------
    ridge : float
        Ridge strength relative to the mean eigenvalue of ``E^T E`` (so the same value
        works for a catalogue of 1,000 or 100,000 papers). Larger values move the model
        towards the plain content profile; 10 keeps most of the whitening while damping the
        thousands of directions a few labels cannot pin down.
    min_labels : int
        Users with fewer labelled papers than this get their content profile instead.
    half_life_days, interest_weight : float
        As in ``ContentProfile``: recency decay of labels, and the weight of explicit interests
        (which act as extra positive labels).

    Raises
    ------
    ValueError
        For a non-positive ``ridge`` or ``half_life_days``, ``min_labels`` < 1 or a negative
        ``interest_weight``.
    """

    name: ClassVar[str] = "linear"

    def __init__(
        self,
        *,
        ridge: float = 10.0,
        min_labels: int = 3,
        half_life_days: float = 30.0,
        interest_weight: float = 0.5,
    ) -> None:
        if not ridge > 0 or not half_life_days > 0 or not interest_weight >= 0 or min_labels < 1:
            raise ValueError(
                "PerUserLinear needs ridge > 0, half_life_days > 0, interest_weight >= 0 and "
                f"min_labels >= 1; got {ridge}, {half_life_days}, {interest_weight}, {min_labels}"
            )
        self.ridge = float(ridge)
        self.min_labels = int(min_labels)
        self.half_life_days = float(half_life_days)
        self.interest_weight = float(interest_weight)
        self._inverse_gram: NDArray[np.float32] | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "ridge": self.ridge,
            "min_labels": self.min_labels,
            "half_life_days": self.half_life_days,
            "interest_weight": self.interest_weight,
        }

    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Learn the shared ``(E^T E + lam I)^-1`` from the snapshot's paper embeddings."""
        embeddings = unit_rows(snapshot.papers.embeddings).astype(np.float64)
        gram = embeddings.T @ embeddings
        d = gram.shape[0]
        lam = self.ridge * max(float(np.trace(gram)) / d, 1e-12)
        self._inverse_gram = np.linalg.inv(gram + lam * np.eye(d)).astype(np.float32)
        return self

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """Unit ridge weights, shape (n_users, d); content profile below ``min_labels``."""
        inverse = require(self._inverse_gram, self)
        check_width(self, len(inverse), users.d, "user")
        labels = event_weight_matrix(users, self.half_life_days)
        target = labels @ unit_rows(users.history_embeddings)
        interests = interest_weight_matrix(users, self.interest_weight)
        target += interests @ unit_rows(users.interest_embeddings)
        ridge = unit_rows(target @ inverse)
        enough = np.diff(labels.indptr) >= self.min_labels
        if enough.all():
            return ridge
        profile = ContentProfile(
            half_life_days=self.half_life_days, interest_weight=self.interest_weight
        ).user_vectors(users)
        return np.where(enough[:, None], ridge, profile)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """L2-normalised paper embeddings, shape (n_papers, d)."""
        inverse = require(self._inverse_gram, self)
        check_width(self, len(inverse), papers.d, "paper")
        return unit_rows(papers.embeddings)

    def embedding_map(self, d: int) -> NDArray[np.float32]:
        """The identity: paper vectors are the unit embeddings."""
        return np.eye(d, dtype=np.float32)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """``{"inverse_gram": (d, d)}`` and the constructor arguments."""
        return {"inverse_gram": require(self._inverse_gram, self)}, self._config()

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild from ``get_state()``; raise ``ValueError`` on missing or misshapen arrays."""
        component = cls(**checked_config(cls.__name__, config, cls()._config()))
        inverse = state_array(cls.__name__, arrays, "inverse_gram", 2, np.float32)
        if inverse.shape[0] != inverse.shape[1]:
            raise ValueError(f"PerUserLinear: inverse_gram must be square, got {inverse.shape}")
        component._inverse_gram = inverse
        return component
