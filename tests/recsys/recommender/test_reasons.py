"""Reasons: the similarity floor, the component that ranked a pair, and the sentence chosen."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.recommender import ContentProfile, Hybrid, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.popularity import PopularityPrior
from recsys.recommender.reasons import (
    CLOSEST_TODAY,
    COLLABORATIVE,
    DEFAULT_FLOOR,
    EXPLORING,
    IN_YOUR_FIELD,
    NEWEST,
    POPULAR,
    choose_reasons,
    contributions,
    neighbour_similarity,
    top_component,
)


def _pairs(cosines: list[float]) -> np.ndarray:
    """Papers 2k and 2k+1 have cosine cosines[k] with each other and 0 with all others."""
    rows = []
    for k, c in enumerate(cosines):
        a = np.zeros(2 * len(cosines))
        b = np.zeros(2 * len(cosines))
        a[2 * k] = 1.0
        b[2 * k], b[2 * k + 1] = c, np.sqrt(1 - c * c)
        rows += [a, b]
    return np.array(rows, dtype=np.float32)


def test_the_floor_is_the_median_similarity_to_the_kth_neighbour() -> None:
    # Each paper's nearest neighbour is its twin: 0.2, 0.2, 0.5, 0.5, 0.9, 0.9 -> median 0.5.
    assert neighbour_similarity(_pairs([0.2, 0.5, 0.9]), rank=1) == pytest.approx(0.5)
    # The 2nd neighbour of every paper is orthogonal to it.
    assert neighbour_similarity(_pairs([0.2, 0.5, 0.9]), rank=2) == pytest.approx(0.0)


def test_a_corpus_too_small_for_the_rank_falls_back_to_the_default_floor() -> None:
    assert neighbour_similarity(_pairs([0.5]), rank=10) == DEFAULT_FLOOR


def test_the_top_component_is_the_largest_positive_contribution() -> None:
    weighted = np.array([[0.1, 0.7, 0.2], [-0.3, -0.1, -0.2], [0.5, 0.0, 0.5]])
    assert top_component(weighted, ["content", "als", "popularity"]) == ["als", None, "content"]


def test_each_kind_of_pair_gets_its_true_reason() -> None:
    titles, labels = ["Deep Nets"], ["speech"]
    none = [None] * 8
    reasons = choose_reasons(
        author=[*none, "Ada Garcia", None, "Ada Garcia"],
        category=[*none, None, "cs.LG", "cs.LG"],
        history=[0, -1, 0, -1, -1, -1, -1, -1, 0, 0, -1],
        interest=[-1, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1],
        component=[
            "als", "content", "content", "als", "popularity", "content", "linear", None,
            "content", "content", "als",
        ],
        explored=[False, False, True, *[False] * 8],
        profile_close=[True, True, True, True, True, True, False, False, True, True, True],
        history_titles=titles,
        interest_labels=labels,
    )  # fmt: skip
    assert reasons == [
        "Similar to “Deep Nets” you read",  # a close source is cited whoever ranked it
        "Matches your interest “speech”",
        EXPLORING,  # a random slot never claims similarity
        COLLABORATIVE,
        POPULAR,
        IN_YOUR_FIELD,  # content ranked it and the whole profile is close
        CLOSEST_TODAY,  # content ranked it but nothing is close: say only what is true
        NEWEST,  # nothing added anything: a cold reader's recency order
        "New paper by “Ada Garcia”, whom you follow",  # what the reader asked for by name
        "Similar to “Deep Nets” you read",  # a close paper says more than a category
        "New paper by “Ada Garcia”, whom you follow",
    ]


def test_contributions_of_a_hybrid_sum_to_its_score() -> None:
    rng = np.random.default_rng(0)
    papers = PaperBlock(
        paper_ids=np.arange(5),
        embeddings=rng.normal(size=(5, 4)).astype(np.float32),
        age_days=np.array([0.5, 1, 2, 3, 4], dtype=np.float32),
    )
    users = UserBlock(
        user_ids=np.array([10, 11]),
        history_embeddings=papers.embeddings,  # events index the papers (a snapshot's rule)
        event_user=np.array([0, 1], dtype=np.int32),
        event_item=np.array([0, 1], dtype=np.int32),
        event_weight=np.ones(2, dtype=np.float32),
        event_age_days=np.ones(2, dtype=np.float32),
        interest_embeddings=np.zeros((0, 4), dtype=np.float32),
        interest_user=np.zeros(0, dtype=np.int32),
    )
    hybrid = Hybrid([ContentProfile(), PopularityPrior()], weights=[2.0, 0.5])
    hybrid.fit(TrainingSnapshot(users=users, papers=papers))
    user_rows, paper_rows = np.array([0, 0, 1, 1]), np.array([4, 1, 1, 3])

    weighted, names = contributions(hybrid, users, papers, user_rows, paper_rows)

    assert names == ["content", "popularity"]
    expected = hybrid.score(users, papers)[user_rows, paper_rows]
    np.testing.assert_allclose(weighted.sum(axis=1), expected, rtol=1e-5, atol=1e-6)
    content = ContentProfile().score(users, papers)[user_rows, paper_rows]
    np.testing.assert_allclose(weighted[:, 0], 2.0 * content, rtol=1e-5, atol=1e-6)


def test_a_source_below_the_floor_is_never_cited() -> None:
    # One history paper; the first candidate is close to it (cosine 0.9), the second is not
    # (cosine 0.3) although it still adds a positive amount to the profile score.
    history = np.array([[1.0, 0.0]], dtype=np.float32)
    candidates = np.array([[0.9, np.sqrt(1 - 0.81)], [0.3, np.sqrt(1 - 0.09)]], np.float32)
    users = UserBlock(
        user_ids=np.array([1]),
        history_embeddings=history,
        event_user=np.array([0], dtype=np.int32),
        event_item=np.array([0], dtype=np.int32),
        event_weight=np.ones(1, dtype=np.float32),
        event_age_days=np.zeros(1, dtype=np.float32),
        interest_embeddings=np.zeros((0, 2), dtype=np.float32),
        interest_user=np.zeros(0, dtype=np.int32),
    )
    papers = PaperBlock(paper_ids=np.arange(2), embeddings=candidates, age_days=np.zeros(2))
    cited, _ = ContentProfile().cited_sources(users, papers, [0, 0], [0, 1], min_similarity=0.5)
    assert cited.tolist() == [0, -1]
    cited_any, _ = ContentProfile().cited_sources(users, papers, [0, 0], [0, 1])
    assert cited_any.tolist() == [0, 0]  # without a floor, any positive source was cited
