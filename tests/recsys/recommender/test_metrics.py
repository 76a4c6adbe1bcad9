"""Ranking metrics on tiny hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender import metrics

# Two users ranked over 6 candidates (columns), best first; -1 pads a short list.
COLS = np.array([[4, 0, 5, 2], [1, 3, -1, -1]])
# User 0 wants 0, 2, 3 (3 is never ranked); user 1 wants 3.
RELEVANT = sp.csr_matrix(np.array([[1, 0, 1, 1, 0, 0], [0, 0, 0, 1, 0, 0]]))
HITS = np.array([[False, True, False, True], [False, True, False, False]])
N_RELEVANT = np.array([3, 1])


def test_hit_matrix_marks_relevant_ranks_and_never_padding() -> None:
    np.testing.assert_array_equal(metrics.hit_matrix(COLS, RELEVANT), HITS)


def test_hit_matrix_needs_one_row_per_user() -> None:
    with pytest.raises(ValueError, match="one row of ranked columns per user"):
        metrics.hit_matrix(COLS[:1], RELEVANT)


def test_count_relevant_ignores_stored_zeros() -> None:
    stored_zero = sp.csr_matrix((np.array([0.0, 1.0]), ([0, 0], [1, 2])), shape=(1, 3))
    np.testing.assert_array_equal(metrics.count_relevant(stored_zero), [1])


def test_recall_divides_by_all_relevant_papers() -> None:
    # User 0 finds 1 of 3 in the top 2 and 2 of 3 in the top 4; user 1 finds 1 of 1.
    np.testing.assert_allclose(metrics.recall_at_k(HITS, N_RELEVANT, 2), [1 / 3, 1.0])
    np.testing.assert_allclose(metrics.recall_at_k(HITS, N_RELEVANT, 4), [2 / 3, 1.0])


def test_recall_is_nan_for_a_user_with_nothing_relevant() -> None:
    assert np.isnan(metrics.recall_at_k(HITS[:1], np.array([0]), 2)[0])


def test_precision_and_hit_rate() -> None:
    np.testing.assert_allclose(metrics.precision_at_k(HITS, 4), [0.5, 0.25])
    np.testing.assert_allclose(metrics.hit_rate_at_k(HITS, 1), [0.0, 0.0])
    np.testing.assert_allclose(metrics.hit_rate_at_k(HITS, 2), [1.0, 1.0])


def test_ndcg_against_a_hand_computation() -> None:
    # User 0: hits at ranks 2 and 4 -> DCG = 1/log2(3) + 1/log2(5); ideal puts 3 hits first:
    # 1 + 1/log2(3) + 1/log2(4). User 1: hit at rank 2 -> (1/log2(3)) / 1.
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    ideal = 1 + 1 / np.log2(3) + 0.5
    np.testing.assert_allclose(
        metrics.ndcg_at_k(HITS, N_RELEVANT, 4), [dcg / ideal, 1 / np.log2(3)]
    )


def test_ndcg_is_one_for_a_perfect_ranking() -> None:
    perfect = np.array([[True, True, False]])
    np.testing.assert_allclose(metrics.ndcg_at_k(perfect, np.array([2]), 3), [1.0])


def test_mrr_is_the_reciprocal_rank_of_the_first_hit() -> None:
    np.testing.assert_allclose(metrics.mrr_at_k(HITS, 4), [0.5, 0.5])
    np.testing.assert_allclose(metrics.mrr_at_k(HITS, 1), [0.0, 0.0])


def test_the_mean_skips_users_with_nothing_relevant() -> None:
    values = np.array([0.5, np.nan, 1.0])
    assert metrics.mean_over_users(values, np.array([2, 0, 1])) == pytest.approx(0.75)
    assert np.isnan(metrics.mean_over_users(values, np.zeros(3)))


def test_mrr_reads_the_whole_list() -> None:
    hits = np.array([[False, False, False, True], [False, False, False, False]])
    np.testing.assert_allclose(metrics.mrr(hits), [0.25, 0.0])


# Scores of two users over 5 candidates, for the AUC cases.
AUC_SCORES = np.array([[0.9, 0.1, 0.5, 0.5, 0.3], [0.2, 0.4, 0.6, 0.8, 1.0]], dtype=np.float32)
AUC_RELEVANT = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]]))


def test_auc_counts_correctly_ordered_pairs_and_halves_ties() -> None:
    # User 0: positives 0.9 and 0.5 against negatives 0.1, 0.5, 0.3: 0.9 beats all three,
    # 0.5 beats 0.1 and 0.3 and ties 0.5 -> (3 + 2.5) / 6. User 1: the positive is on top.
    np.testing.assert_allclose(metrics.auc(AUC_SCORES, AUC_RELEVANT), [5.5 / 6, 1.0])


def test_auc_leaves_excluded_candidates_out_of_both_sides() -> None:
    # Excluding user 0's tied negative (column 3) and user 1's positive (column 4).
    exclude = np.zeros((2, 5), dtype=bool)
    exclude[0, 3] = exclude[1, 4] = True
    got = metrics.auc(AUC_SCORES, AUC_RELEVANT, sp.csr_matrix(exclude))
    assert got[0] == pytest.approx(1.0)
    assert np.isnan(got[1])  # no positive left


def test_auc_is_a_half_for_constant_scores_and_zero_for_a_reversed_ranking() -> None:
    flat = np.zeros((1, 4), dtype=np.float32)
    reversed_ = np.array([[0.0, 1.0, 2.0, 3.0]], dtype=np.float32)
    relevant = sp.csr_matrix(np.array([[1, 1, 0, 0]]))
    np.testing.assert_allclose(metrics.auc(flat, relevant), [0.5])
    np.testing.assert_allclose(metrics.auc(reversed_, relevant), [0.0])


def test_auc_rejects_nan_scores() -> None:
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc(np.array([[np.nan, 1.0]]), sp.csr_matrix(np.array([[1, 0]])))


def test_catalogue_coverage_counts_distinct_listed_candidates() -> None:
    # COLS lists 4, 0, 5, 2, 1, 3: every one of 6 candidates; of 12, half.
    assert metrics.catalogue_coverage(COLS, 6) == pytest.approx(1.0)
    assert metrics.catalogue_coverage(COLS, 12) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_candidates"):
        metrics.catalogue_coverage(COLS, 5)


def test_intra_list_diversity_is_the_mean_pairwise_cosine_distance() -> None:
    vectors = np.array([[1, 0], [0, 2], [1, 1], [-3, 0]], dtype=np.float32)
    cols = np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1]])
    # User 0: pairs (0,1) -> 1, (0,2) -> 1 - 1/sqrt2, (1,2) -> 1 - 1/sqrt2.
    # User 1: opposite vectors -> 2. User 2: one paper, no pair.
    expected_0 = (1 + 2 * (1 - 1 / np.sqrt(2))) / 3
    got = metrics.intra_list_diversity(cols, vectors)
    np.testing.assert_allclose(got[:2], [expected_0, 2.0])
    assert np.isnan(got[2])


def test_novelty_is_the_mean_self_information_with_a_floor_for_unseen_papers() -> None:
    popularity = np.array([0.5, 0.25, 0.0, 1.0])
    cols = np.array([[0, 1, 3], [2, -1, -1], [-1, -1, -1]])
    # User 0 at k=2: (1 + 2) / 2 bits; unseen paper 2 floors at 1/8 -> 3 bits; no list -> NaN.
    got = metrics.novelty(cols, popularity, 2, n_users=8)
    np.testing.assert_allclose(got[:2], [1.5, 3.0])
    assert np.isnan(got[2])
    # Without n_users the floor is the rarest seen paper (0.25 -> 2 bits).
    assert metrics.novelty(cols, popularity, 3)[1] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="n_users"):
        metrics.novelty(cols, np.zeros(4), 3)


def test_intra_list_diversity_treats_a_zero_vector_as_orthogonal() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    got = metrics.intra_list_diversity(np.array([[0, 1], [0, 0]]), vectors)
    np.testing.assert_allclose(got, [1.0, 0.0])  # a repeated paper is at distance 0
