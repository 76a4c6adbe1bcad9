"""The content profile: a user is the recency-weighted mean of what they read, plus their interests.

For user u with events e (paper h_e, signed weight w_e, age a_e) and explicit interests j::

    c_e = w_e * 0.5 ** (a_e / half_life_days)
    p_u = normalise( sum_e c_e * h_e / sum_e |c_e|  +  interest_weight * mean_j i_j )

with every h_e and i_j L2-normalised first. Likes pull the profile towards a paper and
"less like this" pushes it away. A paper's vector is its L2-normalised embedding, so a score
is the cosine between the profile and the paper, in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys.recommender.base import Component, PaperBlock, UserBlock, unit_rows

# A profile whose likes and dislikes cancel down to rounding noise has no direction; treat
# it as cold (zero) rather than normalising the noise into a confident-looking vector.
_MIN_PROFILE_NORM = 1e-6
# Pairs x sources rows gathered at once by ``explain``: bounds memory to ~64 MB at d=256.
_EXPLAIN_CHUNK = 65_536
# Sources per pair judged on their text when a reason must be true: the ones adding most in
# the embedding space. Tokenising every history paper of a chunk's readers took 40 s for
# the first 1,000 digests of the send benchmark; a close source is nearly always among the
# top few by embedding.
SHORTLIST = 3

NEW_IN_FIELD = "New in your field"


def _unit_rows(matrix: ArrayLike, min_norm: float = 0.0) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm; rows with norm <= ``min_norm`` become zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    out = np.zeros_like(matrix)
    return np.divide(matrix, norms, out=out, where=norms > min_norm)


class ContentProfile(Component):
    """Content-based user profiles, scored by cosine against paper embeddings.

    Needs no training (``fit`` is a no-op) and scores brand-new papers from their embedding.

    Parameters
    ----------
    half_life_days : float
        An event's weight halves every ``half_life_days``: research interests drift over
        months, so a month-old click should count half as much as today's.
    interest_weight : float
        Weight of the mean explicit interest against the history term. The history term is
        a weighted mean of unit vectors (norm <= 1), so 0.5 lets interests steer a new user
        fully (they are all there is) while, once the user has a reading history, what they
        actually read counts twice as much as what they said at sign-up.

    Raises
    ------
    ValueError
        If ``half_life_days`` <= 0 or ``interest_weight`` < 0.
    """

    name: ClassVar[str] = "content"

    def __init__(self, *, half_life_days: float = 30.0, interest_weight: float = 0.5) -> None:
        if not half_life_days > 0:  # written so that NaN fails too
            raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
        if not interest_weight >= 0:
            raise ValueError(f"interest_weight must be >= 0, got {interest_weight}")
        self.half_life_days = float(half_life_days)
        self.interest_weight = float(interest_weight)

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        """Unit profiles, shape (n_users, d); zero for users with no events and no interests."""
        profile = self._history_weights(users) @ _unit_rows(users.history_embeddings)
        profile += self._interest_weights(users) @ _unit_rows(users.interest_embeddings)
        return _unit_rows(profile, _MIN_PROFILE_NORM)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        """L2-normalised paper embeddings, shape (n_papers, d)."""
        return unit_rows(papers.embeddings)

    def embedding_map(self, d: int) -> NDArray[np.float32]:
        """The identity: paper vectors are the unit embeddings."""
        return np.eye(d, dtype=np.float32)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """No arrays; the config holds ``half_life_days`` and ``interest_weight``."""
        config = {"half_life_days": self.half_life_days, "interest_weight": self.interest_weight}
        return {}, config

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        """Rebuild from ``get_state()``; raise ``ValueError`` on arrays or unknown config keys."""
        if arrays:
            raise ValueError(f"ContentProfile keeps no arrays, got {sorted(arrays)}")
        unknown = set(config) - {"half_life_days", "interest_weight"}
        if unknown:
            raise ValueError(f"ContentProfile config: unknown keys {sorted(unknown)}")
        return cls(**config)

    def _history_weights(self, users: UserBlock) -> sp.csr_matrix:
        """(n_users, n_hist) coefficient of each history paper in each user's profile.

        Signed and decayed, then divided by the user's sum of |decayed weight|, so the
        history term is a recency-weighted mean whatever the number of events.
        """
        user, age = users.event_user, users.event_age_days.astype(np.float64)
        # Measuring ages from each user's newest event scales a user's numerator and
        # denominator alike (the mean is unchanged) but keeps a years-old history from
        # underflowing to 0 / 0.
        newest = np.full(users.n_users, np.inf)
        np.minimum.at(newest, user, age)
        decayed = users.event_weight * 0.5 ** ((age - newest[user]) / self.half_life_days)
        total = np.bincount(user, weights=np.abs(decayed), minlength=users.n_users)[user]
        coef = np.divide(decayed, total, out=np.zeros_like(decayed), where=total > 0)
        shape = (users.n_users, len(users.history_embeddings))
        return sp.csr_matrix((coef, (user, users.event_item)), shape=shape)  # sums repeats

    def _interest_weights(self, users: UserBlock) -> sp.csr_matrix:
        """(n_users, n_interests) weights that average each user's interests."""
        user = users.interest_user
        count = np.bincount(user, minlength=users.n_users)[user]
        shape = (users.n_users, len(user))
        return sp.csr_matrix((self.interest_weight / count, (user, np.arange(len(user)))), shape)

    def explain(
        self,
        users: UserBlock,
        papers: PaperBlock,
        user_rows: ArrayLike,
        paper_rows: ArrayLike,
        *,
        history_titles: Sequence[str],
        interest_labels: Sequence[str],
    ) -> list[str]:
        """A one-line reason for each recommended (user, paper) pair.

        The reason names whichever source adds most to the pair's score: the liked history
        paper (``Similar to “<title>” you read``) or the explicit interest
        (``Matches your interest “<label>”``); the paper wins a tie. Disliked papers are never
        cited. If nothing adds a positive amount (e.g. a cold-start user) the reason is
        ``"New in your field"``.

        Parameters
        ----------
        users, papers : UserBlock, PaperBlock
            The blocks that were scored.
        user_rows, paper_rows : array_like of int, shape (n_pairs,)
            Pair ``j`` is (``user_rows[j]``, ``paper_rows[j]``), rows of the blocks; e.g. the
            non-padding entries of ``top_k``'s output.
        history_titles : sequence of str, length n_hist
            Title of each row of ``users.history_embeddings``.
        interest_labels : sequence of str, length n_interests
            Label of each row of ``users.interest_embeddings``.

        Returns
        -------
        list of str, length n_pairs

        Raises
        ------
        ValueError
            If the pairs are not rows of the blocks or the labels do not match the blocks.
        """
        _check_labels("history_titles", history_titles, len(users.history_embeddings))
        _check_labels("interest_labels", interest_labels, len(users.interest_embeddings))
        history, interest = self.cited_sources(users, papers, user_rows, paper_rows)
        return [
            _reason(h, i, history_titles, interest_labels)
            for h, i in zip(history.tolist(), interest.tolist(), strict=True)
        ]

    def cited_sources(
        self,
        users: UserBlock,
        papers: PaperBlock,
        user_rows: ArrayLike,
        paper_rows: ArrayLike,
        *,
        min_similarity: float = 0.0,
        texts: TextVectors | None = None,
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """The history paper and the interest a reason may cite for each (user, paper) pair.

        Of the sources the user liked or gave whose cosine with the paper reaches
        ``min_similarity``, the one adding most to the pair's profile score; -1 where none
        does. Disliked papers are never cited. ``min_similarity`` is the floor below which
        a citation would not be true (see :mod:`recsys.recommender.reasons`); the default
        0 cites any source that adds a positive amount. Cosines are taken between the
        embeddings of the blocks, or, when ``texts`` is given, between those sparse text
        vectors (e.g. TF-IDF before the SVD, where a shared rare term still counts).

        Returns
        -------
        (history_row, interest_row) : two int arrays of length n_pairs
            Rows of ``users.history_embeddings`` and ``users.interest_embeddings``, or -1.
            Where both are set, the history paper adds at least as much (the reason then
            cites it); where they differ, the one that adds more has its row kept and the
            other is -1.
        """
        user, paper = _check_pairs(users, papers, user_rows, paper_rows)
        target = _unit_rows(papers.embeddings[paper])
        history_dense = _dense(_unit_rows(users.history_embeddings), target)
        interest_dense = _dense(_unit_rows(users.interest_embeddings), target)
        if texts is None:
            history_similarity, interest_similarity = history_dense, interest_dense
            shortlists: tuple[Similarity | None, Similarity | None] = (None, None)
        else:
            history_similarity = _sparse(texts.history, texts.items)
            interest_similarity = _sparse(texts.interests, texts.items)
            shortlists = (history_dense, interest_dense)
        history, history_gain = _best_source(
            self._history_weights(users), history_similarity, user, min_similarity, shortlists[0]
        )
        interest, interest_gain = _best_source(
            self._interest_weights(users), interest_similarity, user, min_similarity, shortlists[1]
        )
        # The stronger source wins; the paper wins a tie.
        history_wins = (history >= 0) & (history_gain >= interest_gain)
        return np.where(history_wins, history, -1), np.where(history_wins, -1, interest)


Similarity = Callable[[NDArray[np.intp], NDArray[np.intp]], NDArray[np.float64]]
"""``similarity(source_rows, pair_rows)``: cosine of each source with each pair's paper."""


TextRows = Callable[[NDArray[np.intp]], sp.csr_matrix]
"""``rows(indices)``: unit-norm sparse text vectors of those rows, one per index, in order."""


@dataclass(frozen=True)
class TextVectors:
    """Sparse text vectors judging closeness for :meth:`ContentProfile.cited_sources`.

    ``history`` and ``interests`` give the vectors of rows of the user block's history and
    interests; ``items`` those of (user, paper) pairs. Asked for only the rows a shortlist
    keeps, so text is read and tokenised only for sources that might be cited.
    """

    history: TextRows
    interests: TextRows
    items: TextRows


def _dense(sources: NDArray[np.float32], target: NDArray[np.float32]) -> Similarity:
    return lambda source, pair: _rowwise_dot(sources, source, target, pair)


def _sparse(sources: TextRows, target: TextRows) -> Similarity:
    def similarity(source: NDArray[np.intp], pair: NDArray[np.intp]) -> NDArray[np.float64]:
        if not len(source):
            return np.zeros(0)
        products = sources(source).multiply(target(pair))
        return np.asarray(products.sum(axis=1), dtype=np.float64).ravel()

    return similarity


def _check_pairs(
    users: UserBlock, papers: PaperBlock, user_rows: ArrayLike, paper_rows: ArrayLike
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    user, paper = np.asarray(user_rows), np.asarray(paper_rows)
    if user.ndim != 1 or user.shape != paper.shape:
        raise ValueError(
            f"user_rows and paper_rows: expected two 1-D arrays of one length, "
            f"got shapes {user.shape} and {paper.shape}"
        )
    for name, rows, size in (
        ("user_rows", user, users.n_users),
        ("paper_rows", paper, papers.n_papers),
    ):
        if rows.size and (rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= size):
            raise ValueError(f"{name}: expected integer rows in [0, {size})")
    return user.astype(np.intp), paper.astype(np.intp)


def _check_labels(name: str, labels: Sequence[str], expected: int) -> None:
    if len(labels) != expected:
        raise ValueError(
            f"{name}: expected one label per embedding row ({expected}), got {len(labels)}"
        )


def _best_source(
    weights: sp.csr_matrix,
    similarity: Similarity,
    pair_user: NDArray[np.intp],
    min_similarity: float,
    shortlist: Similarity | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Per pair, the source (column of ``weights``) adding most to the user's profile score.

    Contribution of source s to pair j is ``weights[user_j, s] * similarity(s, j)``. Only
    sources whose similarity with the pair's paper reaches ``min_similarity`` compete; with
    a ``shortlist`` (a cheaper similarity), only the ``SHORTLIST`` sources that add most by
    it are judged by ``similarity``. Returns ``(source, contribution)`` per pair, with source
    -1 and contribution 0 where no positively weighted, close enough source adds a positive
    amount.
    """
    pair, entry = _expand_rows(weights.indptr, pair_user)
    positive = weights.data[entry] > 0  # only what the user liked or said may explain
    pair, entry = pair[positive], entry[positive]
    source = weights.indices[entry]
    if shortlist is not None:
        kept = _top_per_group(pair, weights.data[entry] * shortlist(source, pair), SHORTLIST)
        pair, entry, source = pair[kept], entry[kept], source[kept]
    cosine = similarity(source, pair)
    close = cosine >= min_similarity
    pair, entry, source = pair[close], entry[close], source[close]
    gain = weights.data[entry] * cosine[close]
    best_source = np.full(len(pair_user), -1, np.intp)
    best_gain = np.zeros(len(pair_user))
    first = _first_per_group(pair, -gain)
    win = first[gain[first] > 0]
    best_source[pair[win]], best_gain[pair[win]] = source[win], gain[win]
    return best_source, best_gain


def _expand_rows(
    indptr: NDArray[np.integer[Any]], rows: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Flatten the CSR rows ``rows``: for every stored entry, its pair and its data position."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    pair = np.repeat(np.arange(len(rows)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pair, (np.repeat(starts, counts) + offset).astype(np.intp)


def _top_per_group(group: NDArray[np.intp], key: NDArray[np.float64], k: int) -> NDArray[np.intp]:
    """Indices of the ``k`` largest ``key`` in each group present in ``group``."""
    order = np.lexsort((-key, group))
    starts = np.r_[0, np.flatnonzero(group[order][1:] != group[order][:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return np.sort(order[rank < k])


def _first_per_group(group: NDArray[np.intp], key: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the smallest ``key`` in each group present in ``group``."""
    order = np.lexsort((key, group))
    starts = np.ones(len(order), bool)
    starts[1:] = group[order][1:] != group[order][:-1]
    return order[starts]


def _rowwise_dot(
    a: NDArray[np.float32], a_rows: NDArray[Any], b: NDArray[np.float32], b_rows: NDArray[Any]
) -> NDArray[np.float64]:
    """``<a[a_rows[j]], b[b_rows[j]]>`` for every j, gathered in bounded chunks."""
    out = np.empty(len(a_rows))
    for start in range(0, len(a_rows), _EXPLAIN_CHUNK):
        part = slice(start, start + _EXPLAIN_CHUNK)
        out[part] = np.einsum("ij,ij->i", a[a_rows[part]], b[b_rows[part]])
    return out


def _reason(history: int, interest: int, titles: Sequence[str], labels: Sequence[str]) -> str:
    if history >= 0:
        return f"Similar to “{titles[history]}” you read"
    if interest >= 0:
        return f"Matches your interest “{labels[interest]}”"
    return NEW_IN_FIELD
