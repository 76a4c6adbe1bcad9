"""The relevance bar and feedback in proportion (issue 14, items 2 and 4).

The bar. A paper is sent only when the cosine of the reader's content profile with it
reaches the reader's bar (followed authors and categories clear it whatever their text, and
a reader with no profile at all is exempt, or they would never get a first digest). The base
bar is calibrated at training time on held-out clicks (:func:`calibrate_bar`): the cosine
below which the held-out click rate falls under ``CLICK_RATE_RATIO`` of the rate among the
closest pairs. Without enough held-out clicks it is the stated floor ``FALLBACK_BAR``. Each
reader moves it with a strictness setting (``STRICTNESS``).

Feedback. "Less like this" no longer enters the profile as a negative vector: ten of them on
speech papers pointed the whole profile away from speech and erased an explicit "speaker
verification" interest. Instead each one is a bounded, decaying penalty on papers similar to
the disliked one (:func:`dislike_penalty`); repeated signals add up but saturate at
``PENALTY_CAP``. A paper that clears the bar on an explicit interest alone keeps at least that
interest's own cosine (:func:`apply_feedback`): only the reader removes an interest. And a
reader with several explicit interests gets a share of the digest for each
(:func:`interest_quota`), instead of the one whose words dominate the mean profile.

Everything here is pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from recsys.recommender.base import PaperBlock, UserBlock, unit_rows
from recsys.recommender.content import ContentProfile

# Strictness levels a subscriber picks on the preferences page, and what each adds to the bar
# (cosine units; see test_strictness_fewer_sends_a_subset_of_more for what a step changes).
STRICTNESS: Final[dict[str, float]] = {"fewer": 0.1, "normal": 0.0, "more": -0.1}
STRICTNESS_LABELS: Final[dict[str, str]] = {
    "fewer": "Fewer: only close matches",
    "normal": "Normal",
    "more": "More: include broader matches",
}
DEFAULT_STRICTNESS: Final[str] = "normal"

# The stated floor used when there are too few held-out clicks to calibrate on: a cosine a
# paper sharing none of the reader's words does not reach (TF-IDF + SVD puts unrelated
# texts near 0, with SVD noise of a few hundredths).
FALLBACK_BAR: Final[float] = 0.1
# The bar is where held-out clicks become rarer than this share of their rate among the
# closest pairs (the top band).
CLICK_RATE_RATIO: Final[float] = 0.1
N_BANDS: Final[int] = 20  # equal-mass bands of (user, paper) pairs, by cosine
MIN_HELDOUT: Final[int] = 30  # held-out clicks needed to calibrate; fewer: FALLBACK_BAR
MAX_CALIBRATION_USERS: Final[int] = 2_000  # bounds the (users x papers) product to ~40 MB
MAX_CALIBRATION_PAPERS: Final[int] = 5_000
# A disliked paper's penalty on a paper identical to it: half this for one fresh "less",
# three quarters for two, never more than this however many (cosine units).
PENALTY_CAP: Final[float] = 0.5
# Cosine two texts must exceed to count as related: for a dislike of one paper to touch
# another, for a paper to count toward an interest's quota. Unrelated texts sit within a
# few hundredths of 0 after the SVD, and that noise must not move them.
SIMILAR: Final[float] = 0.1
# Share of its margin above the bar that a paper matching an explicit interest keeps however
# many dislikes: the full margin made one "less" powerless against any interest, none let
# ten of them push a "speaker verification" paper to the bar among every speech paper.
INTEREST_KEEP: Final[float] = 0.5


@dataclass(frozen=True)
class Bar:
    """The base relevance bar of a model version, as stored in its manifest under ``"bar"``."""

    score: float
    method: str  # "heldout-click-rate" or "fallback-floor"
    rate: float = CLICK_RATE_RATIO
    n_heldout: int = 0

    def as_manifest(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "method": self.method,
            "rate": self.rate,
            "n_heldout": self.n_heldout,
        }

    @classmethod
    def from_manifest(cls, data: dict[str, Any] | None) -> Bar:
        """The stored bar; a manifest from before bars were stored gets the stated floor."""
        if not data:
            return cls(FALLBACK_BAR, "fallback-floor")
        return cls(
            float(data["score"]),
            str(data["method"]),
            float(data.get("rate", CLICK_RATE_RATIO)),
            int(data.get("n_heldout", 0)),
        )


@dataclass(frozen=True)
class Dislikes:
    """The "less like this" events of a user block, taken out of the profile.

    ``user[e]`` is the user row of event ``e``, ``vectors[e]`` the disliked paper's unit
    embedding and ``weight[e]`` its decayed strength (1 for a fresh "less").
    """

    user: NDArray[np.int32]
    vectors: NDArray[np.float32]
    weight: NDArray[np.float32]


def split_dislikes(users: UserBlock, half_life_days: float) -> tuple[UserBlock, Dislikes]:
    """The block without its negative events, and those events as :class:`Dislikes`.

    A negative event weighs ``EVENT_WEIGHTS["less"]`` (-2); its strength here is its weight
    relative to that, halved every ``half_life_days`` as the profile's events are.
    """
    negative = users.event_weight < 0
    keep = ~negative
    kept = replace(
        users,
        event_user=users.event_user[keep],
        event_item=users.event_item[keep],
        event_weight=users.event_weight[keep],
        event_age_days=users.event_age_days[keep],
    )
    age = users.event_age_days[negative].astype(np.float64)
    weight = -users.event_weight[negative] / 2.0 * 0.5 ** (age / half_life_days)
    vectors = unit_rows(users.history_embeddings)[users.event_item[negative]]
    return kept, Dislikes(users.event_user[negative], vectors, weight.astype(np.float32))


def dislike_penalty(
    dislikes: Dislikes, papers: NDArray[np.float32], n_users: int
) -> NDArray[np.float32]:
    """(n_users, n_papers) penalty in cosine units: ``PENALTY_CAP * (1 - 0.5 ** s)``.

    ``s[u, i]`` sums, over user u's dislikes, strength times the similarity of paper i with
    the disliked paper: its cosine above ``SIMILAR`` rescaled to [0, 1]. A paper unrelated to
    everything the user disliked gets no penalty at all; one "less" on a paper takes half
    the cap off its twins.
    """
    unit = unit_rows(papers)
    cosine = dislikes.vectors @ unit.T
    similarity = np.maximum(cosine - SIMILAR, 0.0) / (1.0 - SIMILAR) * dislikes.weight[:, None]
    strength = np.zeros((n_users, len(unit)), dtype=np.float64)
    np.add.at(strength, dislikes.user, similarity)
    return (PENALTY_CAP * (1.0 - 0.5**strength)).astype(np.float32)


def interest_similarity(users: UserBlock, papers: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n_interests, n_papers) cosine of each explicit interest with each paper."""
    return unit_rows(users.interest_embeddings) @ unit_rows(papers).T


def interest_floor(
    users: UserBlock, similarity: NDArray[np.float32], bars: NDArray[np.float32]
) -> NDArray[np.float32]:
    """(n_users, n_papers): the best cosine of a paper with one of the user's explicit
    interests where that alone clears the user's bar; -inf elsewhere (no floor)."""
    floor = np.full((users.n_users, similarity.shape[1]), -np.inf, dtype=np.float32)
    np.maximum.at(floor, users.interest_user, similarity)
    return np.where(floor >= bars[:, None], floor, -np.inf).astype(np.float32)


def apply_feedback(
    relevance: NDArray[np.float32],
    penalty: NDArray[np.float32],
    floor: NDArray[np.float32],
    bars: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Relevance lowered by the penalty, but never raised, and where an explicit interest
    alone clears the bar (``floor`` finite) never by more than ``1 - INTEREST_KEEP`` of the
    paper's margin above the bar: such a paper may sink in the ranking, never out of it."""
    bar = bars[:, None]
    matched = np.isfinite(floor)
    margin = np.minimum(relevance, np.where(matched, floor, 0.0)) - bar
    keep = np.where(matched, bar + INTEREST_KEEP * margin, -np.inf)
    return np.maximum(relevance - penalty, np.minimum(relevance, keep)).astype(np.float32)


def in_score_units(
    scores: NDArray[np.float32], drop: NDArray[np.float32], relevance: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Scores lowered by ``drop`` (cosine units), rescaled to each row's score range.

    A hybrid's scores have no fixed scale, so a drop of 0.2 in cosine becomes 0.2 times the
    ratio of the row's score range to its cosine range (1 when the model is the profile).
    """
    score_span = _span(scores)
    cosine_span = _span(relevance)
    scale = np.divide(score_span, cosine_span, out=np.ones_like(score_span), where=cosine_span > 0)
    return (scores - drop * scale[:, None]).astype(np.float32)


def _span(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    finite = np.where(np.isfinite(matrix), matrix, np.nan)
    if not matrix.shape[1]:
        return np.zeros(len(matrix), dtype=np.float32)
    with np.errstate(all="ignore"):
        span = np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1)
    return np.nan_to_num(span, nan=0.0).astype(np.float32)


def user_bars(base: float, strictness: list[str]) -> NDArray[np.float32]:
    """Each user's bar: the base plus their strictness offset (unknown levels: normal)."""
    return np.array([base + STRICTNESS.get(s, 0.0) for s in strictness], dtype=np.float32)


def nearest_interest(
    users: UserBlock, similarity: NDArray[np.float32], cols: NDArray[np.int32]
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """For each ranked column of each row, the user's interest closest to it (-1: padding,
    or no interest within ``SIMILAR`` of it).

    Returns ``(nearest, n_interests)``: ``nearest`` has the shape of ``cols`` and numbers
    each user's interests 0, 1, ... in block order. A paper unrelated to every interest
    belongs to none: its cosines are all SVD noise near 0, whose argmax changed with the
    batch the interests were embedded in, so one reader's digest depended on who else was
    ranked in the same chunk (93 of 1,500 digests on the off-policy test's world).
    """
    nearest = np.full(cols.shape, -1, dtype=np.int32)
    counts = np.bincount(users.interest_user, minlength=users.n_users).astype(np.int32)
    for row in np.flatnonzero(counts >= 2):
        own = np.flatnonzero(users.interest_user == row)
        valid = cols[row] >= 0
        close = similarity[own][:, cols[row, valid]]
        best = np.argmax(close, axis=0).astype(np.int32)
        nearest[row, valid] = np.where(close.max(axis=0, initial=-np.inf) >= SIMILAR, best, -1)
    return nearest, counts


def interest_quota(
    cols: NDArray[np.int32], nearest: NDArray[np.int32], n_interests: int, size: int
) -> NDArray[np.int32]:
    """One ranked row cut to ``size``, with up to ``size // (n + 1)`` papers per interest.

    Each of the ``n`` (>= 2) interests first takes its best papers up to its quota, then
    the rest of the slots go by rank; the result keeps rank order. With one interest (or
    none) this is the plain top ``size``.
    """
    ranked = cols[cols >= 0]
    if n_interests < 2:
        return ranked[:size]
    near = nearest[cols >= 0]
    quota = size // (n_interests + 1)
    chosen = np.zeros(len(ranked), dtype=bool)
    for interest in range(n_interests):
        chosen[np.flatnonzero(near == interest)[:quota]] = True
    rest = np.flatnonzero(~chosen)[: max(size - int(chosen.sum()), 0)]
    chosen[rest] = True
    return ranked[chosen][:size]


# Calibration ------------------------------------------------------------------------------


def calibrate_bar(
    relevance: NDArray[np.floating[Any]],
    clicked: NDArray[np.bool_],
    *,
    ratio: float = CLICK_RATE_RATIO,
    n_bands: int = N_BANDS,
    min_heldout: int = MIN_HELDOUT,
) -> Bar:
    """The cosine below which held-out clicks become rarer than ``ratio`` x the top band's rate.

    Pairs are cut into ``n_bands`` bands of equal size by cosine. Walking down from the top
    band, the bar is the lower edge of the last band whose click rate is at least ``ratio``
    times the top band's. With fewer than ``min_heldout`` clicks: ``FALLBACK_BAR``.
    """
    n_clicks = int(clicked.sum())
    if n_clicks < min_heldout or len(relevance) < n_bands:
        return Bar(FALLBACK_BAR, "fallback-floor", ratio, n_clicks)
    order = np.argsort(-relevance, kind="stable")
    bands = np.array_split(order, n_bands)
    rates = np.array([clicked[band].mean() for band in bands])
    kept = 0
    while kept + 1 < n_bands and rates[kept + 1] >= ratio * rates[0]:
        kept += 1
    edge = float(relevance[bands[kept]].min())
    return Bar(round(edge, 4), "heldout-click-rate", ratio, n_clicks)


def heldout_pairs(
    users: UserBlock, papers: PaperBlock, profile: ContentProfile, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Cosine and held-out label of (user, paper) pairs, leaving each user's latest click out.

    Users with at least two positive events have their newest one held out; their profile
    (dislikes split off, as at scoring time) is rebuilt from the rest and scored against a
    sample of papers that always contains the held-out ones. Papers the user touched
    before are not pairs. ``users.event_item`` must index rows of ``papers``.
    """
    users, _ = split_dislikes(users, profile.half_life_days)
    held = _latest_positive(users)
    rows = np.flatnonzero(held >= 0)
    if not len(rows):
        return np.zeros(0, np.float32), np.zeros(0, bool)
    rng = np.random.default_rng(seed)
    if len(rows) > MAX_CALIBRATION_USERS:
        rows = np.sort(rng.choice(rows, MAX_CALIBRATION_USERS, replace=False))
    training = np.ones(len(users.event_user), dtype=bool)
    training[held[rows]] = False
    trimmed = replace(
        users,
        event_user=users.event_user[training],
        event_item=users.event_item[training],
        event_weight=users.event_weight[training],
        event_age_days=users.event_age_days[training],
    ).take(rows)
    targets = users.event_item[held[rows]]
    cols = _paper_sample(papers.n_papers, targets, rng)
    cosine = profile.user_vectors(trimmed) @ unit_rows(papers.embeddings[cols]).T
    label = cols[None, :] == targets[:, None]
    seen = np.zeros_like(label)
    col_of = np.full(papers.n_papers, -1)
    col_of[cols] = np.arange(len(cols))
    hit = col_of[trimmed.event_item] >= 0
    seen[trimmed.event_user[hit], col_of[trimmed.event_item[hit]]] = True
    pair = ~seen
    return cosine[pair].astype(np.float32), label[pair]


def _latest_positive(users: UserBlock) -> NDArray[np.intp]:
    """Per user row, the event index of their newest positive event if they have >= 2."""
    held = np.full(users.n_users, -1, dtype=np.intp)
    positive = np.flatnonzero(users.event_weight > 0)
    if not len(positive):
        return held
    counts = np.bincount(users.event_user[positive], minlength=users.n_users)
    order = positive[np.lexsort((users.event_age_days[positive], users.event_user[positive]))]
    first = np.r_[True, users.event_user[order][1:] != users.event_user[order][:-1]]
    newest = order[first]
    owners = users.event_user[newest]
    enough = counts[owners] >= 2
    held[owners[enough]] = newest[enough]
    return held


def _paper_sample(
    n_papers: int, targets: NDArray[np.int32], rng: np.random.Generator
) -> NDArray[np.int64]:
    if n_papers <= MAX_CALIBRATION_PAPERS:
        return np.arange(n_papers)
    sample = rng.choice(n_papers, MAX_CALIBRATION_PAPERS, replace=False)
    return np.union1d(sample, targets).astype(np.int64)


def training_bar(users: UserBlock, papers: PaperBlock) -> Bar:
    """The bar calibrated on a training snapshot's users and papers (see :func:`calibrate_bar`)."""
    return calibrate_bar(*heldout_pairs(users, papers, ContentProfile()))
