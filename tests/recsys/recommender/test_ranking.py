"""top_k on hand-computed cases, and against a plain sort on random ones."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender.ranking import MIN_RELEVANCE, PAD_COLUMN, tie_ranks, top_k

NEG_INF = -np.inf


def check(result: tuple[np.ndarray, np.ndarray], cols: list, scores: list) -> None:
    got_cols, got_scores = result
    assert got_cols.dtype == np.int32 and got_scores.dtype == np.float32
    np.testing.assert_array_equal(got_cols, cols)
    np.testing.assert_allclose(got_scores, np.array(scores, dtype=np.float32))


class TestOrdering:
    def test_it_returns_the_k_best_columns_best_first(self) -> None:
        scores = [[0.1, 0.9, 0.5, 0.3], [0.4, -0.2, 0.8, 0.6]]
        check(top_k(scores, 2), [[1, 2], [2, 3]], [[0.9, 0.5], [0.8, 0.6]])

    def test_negative_scores_order_correctly(self) -> None:
        check(top_k([[-0.5, -0.1, -2.0, 0.3]], 4), [[3, 1, 0, 2]], [[0.3, -0.1, -0.5, -2.0]])

    def test_k_equal_to_the_number_of_papers_sorts_the_row(self) -> None:
        check(top_k([[0.2, 0.3, 0.1]], 3), [[1, 0, 2]], [[0.3, 0.2, 0.1]])

    def test_plus_infinity_ranks_first(self) -> None:
        check(top_k([[0.5, np.inf]], 1), [[1]], [[np.inf]])

    def test_no_users_gives_an_empty_block(self) -> None:
        cols, scores = top_k(np.zeros((0, 4), np.float32), 2)
        assert cols.shape == scores.shape == (0, 2)


class TestDroppingAndPadding:
    def test_excluded_entries_are_skipped(self) -> None:
        exclude = np.array([[False, True, False, False]])
        check(top_k([[0.1, 0.9, 0.5, 0.3]], 2, exclude=exclude), [[2, 3]], [[0.5, 0.3]])

    def test_a_sparse_exclusion_matches_the_dense_one(self) -> None:
        scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, -0.2, 0.8, 0.6]])
        dense = np.array([[False, True, False, False], [False, False, True, True]])
        # The stored zero at (0, 0) must exclude nothing.
        sparse = sp.csr_matrix(([1.0, 0.0, 1.0, 1.0], ([0, 0, 1, 1], [1, 0, 2, 3])), shape=(2, 4))
        assert sparse.nnz == 4
        expected = top_k(scores, 3, exclude=dense)
        for got, want in zip(top_k(scores, 3, exclude=sparse), expected, strict=True):
            np.testing.assert_array_equal(got, want)
        check(expected, [[2, 3, 0], [0, 1, -1]], [[0.5, 0.3, 0.1], [0.4, -0.2, NEG_INF]])

    def test_scores_below_min_score_are_dropped_and_the_row_padded(self) -> None:
        scores = [[0.1, 0.9, -0.5, 0.3], [-0.1, -0.2, -0.3, -0.4]]
        check(
            top_k(scores, 3, min_score=0.2),
            [[1, 3, PAD_COLUMN], [PAD_COLUMN] * 3],
            [[0.9, 0.3, NEG_INF], [NEG_INF] * 3],
        )

    def test_a_score_equal_to_min_score_is_kept(self) -> None:
        check(top_k([[0.0, -0.1]], 2, min_score=MIN_RELEVANCE), [[0, -1]], [[0.0, NEG_INF]])

    def test_k_beyond_the_number_of_papers_is_padded(self) -> None:
        check(top_k([[0.2, 0.7]], 4), [[1, 0, -1, -1]], [[0.7, 0.2, NEG_INF, NEG_INF]])

    def test_minus_infinity_means_not_a_candidate(self) -> None:
        check(top_k([[NEG_INF, 0.2]], 2), [[1, -1]], [[0.2, NEG_INF]])

    def test_no_papers_pads_everything(self) -> None:
        check(top_k(np.zeros((2, 0)), 2), [[-1, -1]] * 2, [[NEG_INF, NEG_INF]] * 2)


class TestTies:
    def test_without_a_tie_break_the_lower_column_wins(self) -> None:
        check(top_k([[0.5, 0.7, 0.5, 0.5]], 3), [[1, 0, 2]], [[0.7, 0.5, 0.5]])

    def test_the_larger_tie_break_wins(self) -> None:
        newer_first = -np.array([3.0, 1.0, 2.0, 0.0])  # minus the age in days
        check(
            top_k([[0.5, 0.5, 0.5, 0.9]], 3, tie_break=newer_first), [[3, 1, 2]], [[0.9, 0.5, 0.5]]
        )

    def test_the_tie_break_decides_who_crosses_the_k_boundary(self) -> None:
        scores = np.full((1, 50), 0.25)
        tie_break = np.zeros(50)
        tie_break[37] = 1.0
        check(top_k(scores, 1, tie_break=tie_break), [[37]], [[0.25]])

    def test_the_tie_break_never_overrides_a_higher_score(self) -> None:
        check(top_k([[0.5, 0.6]], 1, tie_break=[10.0, -10.0]), [[1]], [[0.6]])

    def test_equal_tie_breaks_fall_back_to_the_lower_column(self) -> None:
        check(top_k([[0.5, 0.5, 0.5]], 3, tie_break=[0.0, 1.0, 1.0]), [[1, 2, 0]], [[0.5] * 3])

    def test_a_per_user_tie_break(self) -> None:
        tie_break = [[0.0, 1.0], [1.0, 0.0]]
        check(top_k([[0.5, 0.5], [0.5, 0.5]], 1, tie_break=tie_break), [[1], [0]], [[0.5], [0.5]])

    def test_minus_zero_ties_with_zero(self) -> None:
        check(top_k([[-0.0, 0.0]], 2, tie_break=[0.0, 1.0]), [[1, 0]], [[0.0, 0.0]])


class TestTieRanks:
    def test_without_a_tie_break_the_lower_column_ranks_higher(self) -> None:
        np.testing.assert_array_equal(tie_ranks(None, (2, 4)), [3, 2, 1, 0])

    def test_the_larger_tie_break_ranks_higher_then_the_lower_column(self) -> None:
        np.testing.assert_array_equal(tie_ranks([0.0, 2.0, 0.0, 1.0], (1, 4)), [1, 3, 0, 2])


class TestAgainstAPlainSort:
    def test_random_blocks_with_many_ties(self) -> None:
        rng = np.random.default_rng(3)
        scores = rng.integers(-3, 4, size=(40, 30)).astype(np.float32) / 4
        exclude = rng.random((40, 30)) < 0.2
        tie_break = rng.integers(0, 3, size=30).astype(np.float32)
        cols, top = top_k(scores, 7, exclude=exclude, min_score=-0.5, tie_break=tie_break)
        for row in range(40):
            candidates = [c for c in range(30) if not exclude[row, c] and scores[row, c] >= -0.5]
            best = sorted(candidates, key=lambda c: (-scores[row, c], -tie_break[c], c))[:7]
            best += [-1] * (7 - len(best))
            np.testing.assert_array_equal(cols[row], best)
            np.testing.assert_array_equal(
                top[row], [scores[row, c] if c >= 0 else NEG_INF for c in best]
            )


class TestErrors:
    @pytest.mark.parametrize("k", [0, -1])
    def test_k_below_one_is_refused(self, k: int) -> None:
        with pytest.raises(ValueError, match=f"k must be >= 1, got {k}"):
            top_k([[0.1]], k)

    def test_a_non_integer_k_is_refused(self) -> None:
        with pytest.raises(TypeError):
            top_k([[0.1]], 2.5)  # type: ignore[arg-type]

    def test_scores_must_be_2d(self) -> None:
        with pytest.raises(ValueError, match=r"scores: expected a 2-D .* got \(3,\)"):
            top_k([0.1, 0.2, 0.3], 1)

    def test_nan_scores_are_refused_with_their_row(self) -> None:
        with pytest.raises(ValueError, match="scores: NaN in row 1"):
            top_k([[0.1, 0.2], [0.3, np.nan]], 1)

    def test_a_nan_min_score_is_refused(self) -> None:
        with pytest.raises(ValueError, match="min_score: NaN"):
            top_k([[0.1]], 1, min_score=float("nan"))

    def test_exclude_must_match_the_scores(self) -> None:
        with pytest.raises(ValueError, match=r"exclude: expected shape \(1, 2\), got \(1, 3\)"):
            top_k([[0.1, 0.2]], 1, exclude=np.zeros((1, 3), bool))
        with pytest.raises(ValueError, match=r"exclude: expected shape \(1, 2\), got \(2, 2\)"):
            top_k([[0.1, 0.2]], 1, exclude=sp.csr_matrix((2, 2)))

    def test_exclude_must_be_a_bool_mask(self) -> None:
        with pytest.raises(ValueError, match="exclude: expected a bool mask or a sparse matrix"):
            top_k([[0.1, 0.2]], 1, exclude=np.array([[0, 1]]))

    def test_tie_break_must_match_the_papers(self) -> None:
        with pytest.raises(ValueError, match=r"tie_break: expected shape \(2,\) or \(1, 2\)"):
            top_k([[0.1, 0.2]], 1, tie_break=[1.0, 2.0, 3.0])

    def test_a_nan_tie_break_is_refused(self) -> None:
        with pytest.raises(ValueError, match="tie_break: NaN"):
            top_k([[0.1, 0.2]], 1, tie_break=[1.0, np.nan])
