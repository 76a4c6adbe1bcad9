"""Ranking metrics on tiny hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import metrics

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
