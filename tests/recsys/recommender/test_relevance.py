"""The relevance bar and proportionate feedback, on hand-computed cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recsys.recommender import ContentProfile, PaperBlock, UserBlock
from recsys.recommender.relevance import (
    FALLBACK_BAR,
    INTEREST_KEEP,
    PENALTY_CAP,
    Bar,
    Dislikes,
    apply_feedback,
    calibrate_bar,
    dislike_penalty,
    heldout_pairs,
    interest_floor,
    interest_quota,
    nearest_interest,
    split_dislikes,
    user_bars,
)

E = np.eye(4, dtype=np.float32)  # four orthogonal "topics"


def _bands(rates: list[float], per_band: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Pairs in bands of ``per_band``, band b at cosine 1 - b/len, clicked at rate b."""
    relevance, clicked = [], []
    for band, rate in enumerate(rates):
        cosine = 1.0 - band / len(rates)
        relevance += [cosine] * per_band
        clicks = round(rate * per_band)
        clicked += [True] * clicks + [False] * (per_band - clicks)
    return np.array(relevance), np.array(clicked)


def test_the_bar_is_the_lowest_band_still_clicked_at_a_tenth_of_the_top_rate() -> None:
    # Top band clicked 50%, then 30%, 10%, 6%, then 4% (< 5% = a tenth of 50%), then 20%.
    relevance, clicked = _bands([0.5, 0.3, 0.1, 0.06, 0.04, 0.2])

    bar = calibrate_bar(relevance, clicked, n_bands=6, min_heldout=10)

    # Bands 0..3 keep at least 5%; the walk stops at band 4 (a later rise is noise).
    assert bar == Bar(round(1.0 - 3 / 6, 4), "heldout-click-rate", 0.1, 120)


def test_too_few_held_out_clicks_give_the_stated_floor() -> None:
    relevance, clicked = _bands([0.05, 0.0, 0.0])

    bar = calibrate_bar(relevance, clicked, n_bands=3, min_heldout=30)

    assert (bar.score, bar.method, bar.n_heldout) == (FALLBACK_BAR, "fallback-floor", 5)


def test_a_manifest_without_a_bar_loads_the_floor_and_one_with_it_round_trips() -> None:
    stored = Bar(0.23, "heldout-click-rate", 0.1, 412)
    assert Bar.from_manifest(stored.as_manifest()) == stored
    assert Bar.from_manifest(None) == Bar(FALLBACK_BAR, "fallback-floor")


def test_strictness_moves_the_bar_up_or_down() -> None:
    bars = user_bars(0.2, ["fewer", "normal", "more", "unknown"])
    assert bars.tolist() == pytest.approx([0.3, 0.2, 0.1, 0.2])


def _dislikes(user: list[int], vectors: np.ndarray, weight: list[float]) -> Dislikes:
    return Dislikes(
        np.array(user, np.int32), vectors.astype(np.float32), np.array(weight, np.float32)
    )


def test_one_less_halves_the_cap_on_its_twin_and_leaves_an_orthogonal_paper() -> None:
    penalty = dislike_penalty(_dislikes([0], E[:1], [1.0]), E[:2], n_users=1)
    assert penalty[0].tolist() == pytest.approx([PENALTY_CAP / 2, 0.0])


def test_repeated_less_weigh_more_but_saturate_at_the_cap() -> None:
    one, two, ten = (
        dislike_penalty(_dislikes([0] * n, np.repeat(E[:1], n, 0), [1.0] * n), E[:1], 1)
        for n in (1, 2, 10)
    )
    assert float(one[0, 0]) < float(two[0, 0]) < float(ten[0, 0]) <= PENALTY_CAP
    assert float(two[0, 0]) == pytest.approx(0.75 * PENALTY_CAP)
    assert float(ten[0, 0]) == pytest.approx(PENALTY_CAP, rel=1e-3)


def test_an_old_less_weighs_less_than_a_fresh_one() -> None:
    users = UserBlock(
        user_ids=np.array([1], np.int64),
        history_embeddings=E[:2],
        event_user=np.array([0, 0, 0], np.int32),
        event_item=np.array([0, 1, 1], np.int32),
        event_weight=np.array([-2.0, -2.0, 1.0], np.float32),
        event_age_days=np.array([0.0, 30.0, 1.0], np.float32),
        interest_embeddings=np.zeros((0, 4), np.float32),
        interest_user=np.zeros(0, np.int32),
    )

    kept, dislikes = split_dislikes(users, half_life_days=30.0)

    assert kept.event_weight.tolist() == [1.0]  # only the click stays in the profile
    assert dislikes.weight.tolist() == pytest.approx([1.0, 0.5])
    assert dislikes.vectors.tolist() == E[:2].tolist()


def test_an_interest_keeps_half_its_margin_over_the_bar_whatever_the_penalty() -> None:
    relevance = np.array([[0.6, 0.6, 0.6]], np.float32)
    penalty = np.array([[0.5, 0.5, 0.05]], np.float32)
    # Paper 0 matches an interest at 0.8, paper 1 matches none, paper 2 is barely penalised.
    floor = np.array([[0.8, -np.inf, 0.8]], np.float32)
    bars = np.array([0.2], np.float32)

    adjusted = apply_feedback(relevance, penalty, floor, bars)

    kept = 0.2 + INTEREST_KEEP * (0.6 - 0.2)
    assert adjusted[0].tolist() == pytest.approx([kept, 0.1, 0.55])


def test_an_interest_floors_only_papers_it_alone_puts_over_the_bar() -> None:
    users = UserBlock(
        user_ids=np.array([1, 2], np.int64),
        history_embeddings=np.zeros((0, 4), np.float32),
        event_user=np.zeros(0, np.int32),
        event_item=np.zeros(0, np.int32),
        event_weight=np.zeros(0, np.float32),
        event_age_days=np.zeros(0, np.float32),
        interest_embeddings=E[:1],
        interest_user=np.array([0], np.int32),
    )
    papers = np.stack([E[0], E[0] * 0.1 + E[1]]).astype(np.float32)
    similarity = (E[:1] @ (papers / np.linalg.norm(papers, axis=1, keepdims=True)).T).astype(
        np.float32
    )

    floor = interest_floor(users, similarity, np.array([0.2, 0.2], np.float32))

    assert floor[0, 0] == pytest.approx(1.0)
    assert np.isneginf(floor[0, 1])  # cosine ~0.1: below the bar, no floor
    assert np.isneginf(floor[1]).all()  # user 2 gave no interest


def test_each_interest_gets_its_quota_and_the_rest_go_by_rank() -> None:
    cols = np.array([10, 11, 12, 13, 14, 15, 16, 17, 20, 21, -1], np.int32)
    nearest = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, -1], np.int32)

    picked = interest_quota(cols, nearest, n_interests=2, size=5)

    # Quota 5 // 3 = 1 each: 10 (interest 0) and 20 (interest 1), then 11, 12, 13 by rank.
    assert picked.tolist() == [10, 11, 12, 13, 20]
    assert interest_quota(cols, nearest, n_interests=1, size=3).tolist() == [10, 11, 12]


def test_held_out_pairs_label_each_users_newest_click_and_skip_what_they_read() -> None:
    papers = PaperBlock(
        paper_ids=np.arange(4, dtype=np.int64),
        embeddings=E,
        age_days=np.zeros(4, np.float32),
    )
    users = UserBlock(
        user_ids=np.array([1, 2], np.int64),
        history_embeddings=E,
        event_user=np.array([0, 0, 1], np.int32),
        event_item=np.array([0, 1, 2], np.int32),
        event_weight=np.array([1.0, 1.0, 1.0], np.float32),
        event_age_days=np.array([5.0, 1.0, 1.0], np.float32),  # user 0's newest: paper 1
        interest_embeddings=np.zeros((0, 4), np.float32),
        interest_user=np.zeros(0, np.int32),
    )

    cosine, clicked = heldout_pairs(users, papers, ContentProfile())

    # Only user 0 has two clicks: profile = paper 0; pairs with papers 1, 2, 3 (0 was read).
    assert cosine.tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert clicked.tolist() == [True, False, False]


def test_a_paper_unrelated_to_every_interest_counts_toward_no_quota() -> None:
    # Two interests; paper 0 is close to the first, paper 1 near 0 for both (SVD noise).
    users = UserBlock.cold(np.array([7]), 2)
    users = replace(
        users,
        interest_embeddings=np.eye(2, dtype=np.float32),
        interest_user=np.zeros(2, dtype=np.int32),
    )
    similarity = np.array([[0.8, -2e-8], [0.1, 1e-8]], dtype=np.float32)
    nearest, counts = nearest_interest(users, similarity, np.array([[0, 1, -1]], np.int32))
    assert nearest.tolist() == [[0, -1, -1]] and counts.tolist() == [2]
