"""The recommender contract: the data blocks every component reads, and ``Component``.

A component maps users and papers to vectors of one width ``k`` so that a block of scores is
``U @ P.T``. Because every term is a dot product, the hybrid blend is one matrix product over
concatenated vectors (DESIGN.md, "The recommender").

Everything here is pure: arrays in, arrays out. Ages are passed in; the clock is never read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

# Which dtypes each declared type accepts before the cast: indices must already be integers
# (a float index is a bug upstream), while float fields take integers too.
_ACCEPTED_KINDS = {np.int32: "iu", np.int64: "iu", np.float32: "fiu"}


def _coerce(block: object, field: str, dtype: type[Any], ndim: int) -> NDArray[Any]:
    """Replace ``block.field`` with a ``dtype`` array of ``ndim`` dimensions, or raise."""
    where = f"{type(block).__name__}.{field}"
    value = np.asarray(getattr(block, field))
    if value.ndim != ndim:
        raise ValueError(f"{where}: expected a {ndim}-D array, got shape {value.shape}")
    if value.size and value.dtype.kind not in _ACCEPTED_KINDS[dtype]:
        raise ValueError(f"{where}: expected {np.dtype(dtype).name} values, got {value.dtype}")
    cast = value.astype(dtype, copy=False)
    if cast.dtype.kind in "iu" and not np.array_equal(cast, value):
        raise ValueError(f"{where}: values do not fit in {np.dtype(dtype).name}")
    object.__setattr__(block, field, cast)  # frozen dataclass: __post_init__ may still set
    return cast


def _check_length(block: object, field: str, array: NDArray[Any], like: str) -> None:
    expected = len(getattr(block, like))
    if len(array) != expected:
        where = f"{type(block).__name__}.{field}"
        raise ValueError(f"{where}: expected {expected} rows like {like}, got {len(array)}")


def _check_index(block: object, field: str, index: NDArray[Any], size: int, into: str) -> None:
    if index.size and (index.min() < 0 or index.max() >= size):
        where = f"{type(block).__name__}.{field}"
        raise ValueError(f"{where}: values must be rows of {into}, in [0, {size})")


def _check_finite(block: object, field: str, array: NDArray[Any], *, non_negative: bool) -> None:
    # NaN would silently poison every score it touches, so reject it at the boundary.
    bad = not np.isfinite(array).all() or (non_negative and array.size and array.min() < 0)
    if bad:
        where = f"{type(block).__name__}.{field}"
        rule = "finite and >= 0" if non_negative else "finite"
        raise ValueError(f"{where}: values must be {rule}")


def _check_unique(block: object, field: str, ids: NDArray[Any]) -> None:
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{type(block).__name__}.{field}: ids must be unique")


def _check_rows(rows: ArrayLike, size: int, what: str) -> NDArray[np.intp]:
    """``rows`` as unique row numbers in [0, size), for ``take``."""
    out = np.asarray(rows)
    if out.ndim != 1 or (out.size and out.dtype.kind not in "iu"):
        raise ValueError(f"rows: expected a 1-D integer array, got {out.dtype} {out.shape}")
    if out.size and (out.min() < 0 or out.max() >= size or len(np.unique(out)) != len(out)):
        raise ValueError(f"rows: expected unique rows of the {what}, in [0, {size})")
    return out.astype(np.intp)


# Rows with a smaller norm count as empty (no content): scaling them up would turn
# rounding noise into a direction.
_MIN_NORM = 1e-6


def unit_rows(matrix: ArrayLike) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm (float32); rows of norm <= 1e-6 become zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > _MIN_NORM)


@dataclass(frozen=True)
class UserBlock:
    """What the recommender knows about a block of users at scoring time.

    Rebuilt from each user's latest events, so yesterday's clicks count today. Arrays are
    cast to the dtypes below on construction; a wrong shape, an index out of range or a
    non-finite value raises a ``ValueError`` naming the field.

    Attributes
    ----------
    user_ids : NDArray[np.int64], shape (n_users,)
        Unique user ids; row ``r`` of every output is ``user_ids[r]``.
    history_embeddings : NDArray[np.float32], shape (n_hist, d)
        Embeddings of the papers these users interacted with.
    event_user : NDArray[np.int32], shape (n_events,)
        Row in this block of the user of each event.
    event_item : NDArray[np.int32], shape (n_events,)
        Row in ``history_embeddings`` of the paper of each event.
    event_weight : NDArray[np.float32], shape (n_events,)
        Signed: +1 click, like or "more like this"; -1 "less like this". Callers may scale.
    event_age_days : NDArray[np.float32], shape (n_events,)
        Age of each event at scoring time, >= 0.
    interest_embeddings : NDArray[np.float32], shape (n_interests, d)
        Embedded explicit interests (keywords, free text, seed papers).
    interest_user : NDArray[np.int32], shape (n_interests,)
        Row in this block of the user of each interest.
    history_ids : NDArray[np.int64], shape (n_hist,), or None
        Paper id of each row of ``history_embeddings``, when known. Components that learn
        per-paper factors (ALS) use it to fold users in with the factors of papers seen in
        training; the others ignore it.
    """

    user_ids: NDArray[np.int64]
    history_embeddings: NDArray[np.float32]
    event_user: NDArray[np.int32]
    event_item: NDArray[np.int32]
    event_weight: NDArray[np.float32]
    event_age_days: NDArray[np.float32]
    interest_embeddings: NDArray[np.float32]
    interest_user: NDArray[np.int32]
    history_ids: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        user_ids = _coerce(self, "user_ids", np.int64, 1)
        _check_unique(self, "user_ids", user_ids)
        history = _coerce(self, "history_embeddings", np.float32, 2)
        self._check_events(history)
        self._check_interests(_coerce(self, "interest_embeddings", np.float32, 2))
        if self.history_ids is not None:
            ids = _coerce(self, "history_ids", np.int64, 1)
            _check_length(self, "history_ids", ids, like="history_embeddings")

    def _check_events(self, history: NDArray[np.float32]) -> None:
        _check_finite(self, "history_embeddings", history, non_negative=False)
        user = _coerce(self, "event_user", np.int32, 1)
        fields = {"event_item": np.int32, "event_weight": np.float32, "event_age_days": np.float32}
        for field, dtype in fields.items():
            _check_length(self, field, _coerce(self, field, dtype, 1), like="event_user")
        _check_index(self, "event_user", user, self.n_users, "the block")
        _check_index(self, "event_item", self.event_item, len(history), "history_embeddings")
        _check_finite(self, "event_weight", self.event_weight, non_negative=False)
        _check_finite(self, "event_age_days", self.event_age_days, non_negative=True)

    def _check_interests(self, interests: NDArray[np.float32]) -> None:
        if interests.shape[1] != self.d:
            raise ValueError(
                f"UserBlock.interest_embeddings: expected d={self.d} columns like "
                f"history_embeddings, got {interests.shape[1]}"
            )
        _check_finite(self, "interest_embeddings", interests, non_negative=False)
        user = _coerce(self, "interest_user", np.int32, 1)
        _check_length(self, "interest_user", user, like="interest_embeddings")
        _check_index(self, "interest_user", user, self.n_users, "the block")

    @property
    def n_users(self) -> int:
        """Number of users (rows) in the block."""
        return len(self.user_ids)

    @property
    def d(self) -> int:
        """Embedding width."""
        return int(self.history_embeddings.shape[1])

    @classmethod
    def cold(cls, user_ids: ArrayLike, d: int) -> UserBlock:
        """Users with no events and no interests (all of them cold-start).

        Parameters
        ----------
        user_ids : array_like of int, shape (n_users,)
        d : int
            Embedding width of the papers they will be scored against.
        """
        none_int, none_float = np.empty(0, np.int32), np.empty(0, np.float32)
        empty = np.empty((0, d), np.float32)
        return cls(
            np.asarray(user_ids),
            empty,
            none_int,
            none_int,
            none_float,
            none_float,
            empty,
            none_int,
        )

    def take(self, rows: ArrayLike) -> UserBlock:
        """The sub-block of users ``rows`` (unique), in that order, with their events and interests.

        ``history_embeddings`` (and ``history_ids``) are shared, not copied, so
        ``event_item`` keeps its meaning.
        """
        rows = _check_rows(rows, self.n_users, "block")
        new_row = np.full(self.n_users, -1, np.int32)
        new_row[rows] = np.arange(len(rows), dtype=np.int32)
        event = new_row[self.event_user] >= 0
        interest = new_row[self.interest_user] >= 0
        return UserBlock(
            self.user_ids[rows],
            self.history_embeddings,
            new_row[self.event_user[event]],
            self.event_item[event],
            self.event_weight[event],
            self.event_age_days[event],
            self.interest_embeddings[interest],
            new_row[self.interest_user[interest]],
            self.history_ids,
        )


@dataclass(frozen=True)
class PaperBlock:
    """A block of papers to score, typically the candidates new since a user's last digest.

    Attributes
    ----------
    paper_ids : NDArray[np.int64], shape (n_papers,)
        Unique paper ids; column ``c`` of every score matrix is ``paper_ids[c]``.
    embeddings : NDArray[np.float32], shape (n_papers, d)
        Paper embeddings, finite.
    age_days : NDArray[np.float32], shape (n_papers,)
        Age of each paper at scoring time, >= 0 (for recency priors and tie-breaks).
    features : scipy.sparse.csr_matrix, shape (n_papers, n_features), or None
        Optional non-negative extra content features (tags, authors, categories,
        citations), in one fixed column order for every block scored by one model. LightFM
        reads them; the other components ignore them.
    """

    paper_ids: NDArray[np.int64]
    embeddings: NDArray[np.float32]
    age_days: NDArray[np.float32]
    features: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        ids = _coerce(self, "paper_ids", np.int64, 1)
        _check_unique(self, "paper_ids", ids)
        embeddings = _coerce(self, "embeddings", np.float32, 2)
        _check_length(self, "embeddings", embeddings, like="paper_ids")
        _check_finite(self, "embeddings", embeddings, non_negative=False)
        age = _coerce(self, "age_days", np.float32, 1)
        _check_length(self, "age_days", age, like="paper_ids")
        _check_finite(self, "age_days", age, non_negative=True)
        if self.features is not None:
            self._check_features()

    def _check_features(self) -> None:
        features = sp.csr_matrix(self.features, dtype=np.float32)
        if features.shape[0] != self.n_papers:
            raise ValueError(
                f"PaperBlock.features: expected {self.n_papers} rows, got {features.shape[0]}"
            )
        if features.nnz and (not np.isfinite(features.data).all() or features.data.min() < 0):
            raise ValueError("PaperBlock.features: values must be finite and >= 0")
        object.__setattr__(self, "features", features)

    @property
    def n_papers(self) -> int:
        """Number of papers (rows) in the block."""
        return len(self.paper_ids)

    @property
    def d(self) -> int:
        """Embedding width."""
        return int(self.embeddings.shape[1])

    def take(self, rows: ArrayLike) -> PaperBlock:
        """The sub-block of papers ``rows`` (unique), in that order, with their features."""
        rows = _check_rows(rows, self.n_papers, "block")
        features = None if self.features is None else self.features[rows]
        return PaperBlock(
            self.paper_ids[rows], self.embeddings[rows], self.age_days[rows], features
        )


@dataclass(frozen=True)
class TrainingSnapshot:
    """Everything a component may learn from: all users with their events, and all papers.

    In a snapshot the history *is* the paper block: ``users.event_item`` indexes rows of
    ``papers``. Pass ``papers.embeddings`` as ``users.history_embeddings`` (the same array,
    no copy); a row-count or width mismatch raises ``ValueError``.
    """

    users: UserBlock
    papers: PaperBlock

    def __post_init__(self) -> None:
        history = self.users.history_embeddings.shape
        if history != self.papers.embeddings.shape:
            raise ValueError(
                f"TrainingSnapshot: users.history_embeddings has shape {history} but "
                f"papers.embeddings has {self.papers.embeddings.shape}; in a snapshot "
                "event_item indexes papers, so pass papers.embeddings as history_embeddings"
            )

    def interactions(self, *, positive_only: bool = True) -> sp.csr_matrix:
        """The (n_users, n_papers) interaction matrix for collaborative components.

        Parameters
        ----------
        positive_only : bool
            Drop events with weight <= 0 ("less like this") first, as implicit-feedback
            models such as ALS expect non-negative confidences. Otherwise keep signed weights.

        Returns
        -------
        scipy.sparse.csr_matrix of float32
            Entry (u, i) is the sum of user u's event weights on paper i. Ages are ignored.
        """
        users = self.users
        keep = users.event_weight > 0 if positive_only else np.ones(len(users.event_user), bool)
        shape = (users.n_users, self.papers.n_papers)
        entries = (users.event_weight[keep], (users.event_user[keep], users.event_item[keep]))
        matrix = sp.csr_matrix(entries, shape=shape, dtype=np.float32)  # sums duplicates
        matrix.eliminate_zeros()
        return matrix


class Component(ABC):
    """One term of the hybrid score: fit on a snapshot, then score users against papers.

    Every term is a dot product of a user vector and a paper vector, so ``score`` is
    ``user_vectors(users) @ paper_vectors(papers).T`` and a blend of components is one matrix
    product over concatenated vectors. Calls are batch-first: a block of users, a block of
    papers. New papers are cold by definition, so ``paper_vectors`` must work from a paper's
    content (its embedding), never from its id alone.

    Cold start: a user with no events and no interests gets a zero vector, hence score 0 for
    every paper. No component invents a preference; the ranking layer
    (``recsys.recommender.ranking.top_k`` with ``tie_break=-papers.age_days``) then orders
    those equal scores by recency, so a new subscriber receives the newest papers.

    State is plain data (arrays and JSON config) so artifacts never need pickle:
    ``type(c).from_state(*c.get_state())`` scores exactly as ``c`` does.

    To add a component, subclass this, give it a unique ``name`` and list the class in
    ``recsys.recommender.COMPONENTS`` so ``load_component`` can find it; its test subclasses
    ``tests.recsys.recommender.contract.ComponentContract``.
    """

    name: ClassVar[str]

    def fit(self, snapshot: TrainingSnapshot) -> Self:
        """Learn from ``snapshot`` and return ``self``.

        Components that score from content alone have nothing to learn; this default keeps
        them usable in the same pipeline.
        """
        return self

    @abstractmethod
    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """User vectors, shape (n_users, k); all-zero for a cold-start user."""

    @abstractmethod
    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """Paper vectors, shape (n_papers, k), computed from the papers' embeddings."""

    def embedding_map(self, d: int) -> NDArray[np.float32] | None:
        """``M`` (d, k) with ``paper_vectors(papers) == unit_rows(papers.embeddings) @ M``.

        A component whose paper vectors are a fixed linear map of the unit embeddings can
        be scored in the embedding space itself: ``U @ (E M).T == (U @ M.T) @ E.T``. The
        hybrid folds every such component into one d-wide block that way, so its vectors
        stay narrow however many factors ALS has. None (the default) means the paper
        vectors are not of that form.
        """
        return None

    def score(self, users: UserBlock, papers: PaperBlock) -> NDArray[np.float32]:
        """Scores of every user against every paper.

        Returns
        -------
        NDArray[np.float32], shape (n_users, n_papers)
            ``user_vectors(users) @ paper_vectors(papers).T``.

        Raises
        ------
        ValueError
            If the user and paper vectors differ in width (e.g. embeddings of another model).
        """
        user, paper = self.user_vectors(users), self.paper_vectors(papers)
        if user.shape[1] != paper.shape[1]:
            raise ValueError(
                f"{type(self).__name__}: user vectors have {user.shape[1]} columns but paper "
                f"vectors have {paper.shape[1]}; were users and papers embedded by one model?"
            )
        return np.asarray(user @ paper.T, dtype=np.float32)

    @abstractmethod
    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """``(arrays, config)``: numeric arrays and a JSON-serialisable config."""

    @classmethod
    @abstractmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild a component from ``get_state()``'s output; raise ``ValueError`` if invalid."""


def load_component(
    name: str, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]
) -> Component:
    """Rebuild the component registered as ``name`` from its saved state.

    Parameters
    ----------
    name : str
        The component's ``name`` (e.g. ``"content"``), as stored in an artifact manifest.
    arrays, config
        What the component's ``get_state`` returned.

    Raises
    ------
    ValueError
        If no component is registered under ``name``, or the state does not fit it.
    """
    # The package imports every component; importing it at the top would be circular.
    from recsys.recommender import COMPONENTS

    by_name = {cls.name: cls for cls in COMPONENTS}
    if name not in by_name:
        raise ValueError(f"unknown component {name!r}; known: {sorted(by_name)}")
    return by_name[name].from_state(arrays, config)
