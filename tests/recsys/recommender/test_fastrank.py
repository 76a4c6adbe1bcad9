"""score_top_k and mmr: against a brute-force sort on random data, and on hand-computed cases.

Integer-valued vectors make every dot product exact in float32, so the blocked product gives
bit-identical scores to ``users @ papers.T`` and the comparison can be exact, ties included.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender.fastrank import cosine_similarity, mmr, score_top_k
from recsys.recommender.ranking import PAD_COLUMN, top_k

NEG_INF = -np.inf


def brute_force(
    scores: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    min_score: float | None = None,
    tie_break: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One full lexsort per row: score descending, tie_break descending, column ascending."""
    n_users, n_papers = scores.shape
    tie = np.zeros(n_papers) if tie_break is None else tie_break
    cols = np.full((n_users, k), PAD_COLUMN, np.int32)
    best = np.full((n_users, k), NEG_INF, np.float32)
    for row in range(n_users):
        valid = scores[row] > NEG_INF
        if exclude is not None:
            valid &= ~exclude[row]
        if min_score is not None:
            valid &= scores[row] >= np.float32(min_score)
        order = np.lexsort((np.arange(n_papers), -tie, -scores[row]))
        kept = order[valid[order]][:k]
        cols[row, : len(kept)] = kept
        best[row, : len(kept)] = scores[row, kept]
    return cols, best


def integer_vectors(
    seed: int, n_users: int = 300, n_papers: int = 60, width: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Small integer entries: exact products, and many tied scores."""
    rng = np.random.default_rng(seed)
    users = rng.integers(-2, 3, size=(n_users, width)).astype(np.float32)
    papers = rng.integers(-2, 3, size=(n_papers, width)).astype(np.float32)
    return users, papers


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


class TestAgainstABruteForceSort:
    @pytest.mark.parametrize("k", [1, 7, 60, 75])
    def test_random_vectors_with_many_ties(self, k: int) -> None:
        users, papers = integer_vectors(seed=k)
        got = score_top_k(users, papers, k, block_rows=32, n_threads=2)
        assert_same(got, brute_force(users @ papers.T, k))

    def test_exclusions_min_score_and_tie_break_together(self) -> None:
        users, papers = integer_vectors(seed=5)
        rng = np.random.default_rng(6)
        exclude = rng.random((300, 60)) < 0.3
        tie_break = rng.integers(0, 3, size=60).astype(np.float32)
        kwargs = {"min_score": 0.0, "tie_break": tie_break}
        want = brute_force(users @ papers.T, 9, exclude=exclude, **kwargs)
        assert_same(score_top_k(users, papers, 9, exclude=exclude, block_rows=50, **kwargs), want)
        sparse = sp.csr_matrix(exclude)
        assert_same(score_top_k(users, papers, 9, exclude=sparse, **kwargs), want)

    def test_any_float_scores_through_an_identity_paper_matrix(self) -> None:
        # scores @ I == scores exactly, so this ranks arbitrary floats, -0.0 and repeats.
        rng = np.random.default_rng(7)
        scores = rng.choice([-1.5, -0.0, 0.0, 0.25, 0.3, 2.0], size=(200, 40)).astype(np.float32)
        scores[:, 5] = rng.standard_normal(200)
        got = score_top_k(scores, np.eye(40, dtype=np.float32), 12, block_rows=16)
        assert_same(got, brute_force(scores, 12))
        assert_same(got, top_k(scores, 12))

    def test_a_thousand_continuous_scores_per_user(self) -> None:
        # The production shape: the bisection runs (a band, then an exact cut) on every row.
        scores = np.random.default_rng(8).standard_normal((40, 1000)).astype(np.float32)
        exclude = sp.random(40, 1000, density=0.05, random_state=9, format="csr") != 0
        got = score_top_k(scores, np.eye(1000, dtype=np.float32), 50, exclude=exclude)
        assert_same(got, brute_force(scores, 50, exclude=exclude.toarray()))
        sim = cosine_similarity(np.random.default_rng(10).standard_normal((1000, 8)))
        fused = score_top_k(scores, np.eye(1000), 10, pool=50, similarity=sim, exclude=exclude)
        assert_same(fused, mmr(*top_k(scores, 50, exclude=exclude), sim, k=10))

    def test_a_row_of_equal_scores_goes_to_the_lower_columns(self) -> None:
        cols, best = score_top_k(np.ones((2, 1)), np.ones((1000, 1)), 50)
        np.testing.assert_array_equal(cols, [np.arange(50)] * 2)
        np.testing.assert_array_equal(best, np.ones((2, 50)))


class TestEdges:
    def test_k_beyond_the_number_of_papers_is_padded(self) -> None:
        cols, best = score_top_k([[1.0]], [[0.2], [0.7]], 4)
        np.testing.assert_array_equal(cols, [[1, 0, -1, -1]])
        np.testing.assert_array_equal(best, np.array([[0.7, 0.2, NEG_INF, NEG_INF]], np.float32))

    def test_a_user_with_everything_excluded_gets_only_padding(self) -> None:
        cols, best = score_top_k(
            [[1.0], [1.0]], [[0.2], [0.7]], 2, exclude=sp.csr_matrix(np.ones((2, 2)))
        )
        assert (cols == PAD_COLUMN).all() and (best == NEG_INF).all()

    def test_no_users_and_no_papers(self) -> None:
        cols, best = score_top_k(np.zeros((0, 3)), np.ones((5, 3)), 2)
        assert cols.shape == best.shape == (0, 2)
        cols, best = score_top_k(np.ones((2, 3)), np.zeros((0, 3)), 2)
        assert (cols == PAD_COLUMN).all() and (best == NEG_INF).all()


class TestMaximalMarginalRelevance:
    # Papers 0, 1, 2 with relevance 0.9, 0.8, 0.5; 0 and 1 are near-duplicates.
    SIM = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    POOL = (np.array([[0, 1, 2]]), np.array([[0.9, 0.8, 0.5]]))

    def test_a_near_duplicate_gives_way_to_a_different_paper(self) -> None:
        # Pick 1: paper 0 (most relevant). Pick 2: paper 1 scores 0.5*0.8 - 0.5*0.9 = -0.05,
        # paper 2 scores 0.5*0.5 - 0.5*0.1 = 0.20, so paper 2. Pick 3: paper 1.
        cols, best = mmr(*self.POOL, self.SIM, k=3, lam=0.5)
        np.testing.assert_array_equal(cols, [[0, 2, 1]])
        np.testing.assert_allclose(best, [[0.9, 0.5, 0.8]])

    def test_lambda_one_keeps_the_relevance_order(self) -> None:
        cols, _ = mmr(*self.POOL, self.SIM, k=3, lam=1.0)
        np.testing.assert_array_equal(cols, [[0, 1, 2]])

    def test_fewer_candidates_than_k_are_padded(self) -> None:
        cols, best = mmr([[2, PAD_COLUMN]], [[0.5, NEG_INF]], self.SIM, k=3, lam=0.5)
        np.testing.assert_array_equal(cols, [[2, -1, -1]])
        np.testing.assert_array_equal(best, np.array([[0.5, NEG_INF, NEG_INF]], np.float32))

    def test_equal_mmr_values_go_to_the_higher_score(self) -> None:
        # lam = 0: after the first pick only similarity counts, and 1 and 2 tie at -0.
        sim = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        cols, _ = mmr([[0, 2, 1]], [[0.9, 0.3, 0.4]], sim, k=3, lam=0.0)
        np.testing.assert_array_equal(cols, [[0, 1, 2]])

    def test_the_fused_kernel_equals_top_k_then_mmr(self) -> None:
        users, papers = integer_vectors(seed=11, n_users=200, n_papers=80, width=6)
        sim = cosine_similarity(papers)
        fused = score_top_k(users, papers, 5, pool=20, lam=0.6, block_rows=64, n_threads=2)
        assert_same(fused, mmr(*top_k(users @ papers.T, 20), sim, k=5, lam=0.6))

    def test_cosine_similarity_of_a_zero_vector_is_zero(self) -> None:
        sim = cosine_similarity([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
        np.testing.assert_allclose(sim, [[1, 0, 1], [0, 0, 0], [1, 0, 1]], atol=1e-6)


class TestErrors:
    def test_nan_in_user_vectors_is_refused_with_its_row(self) -> None:
        users = np.ones((300, 2), np.float32)
        users[257, 1] = np.nan
        with pytest.raises(ValueError, match="user_vectors: NaN or infinity in row 257"):
            score_top_k(users, np.ones((3, 2)), 1, block_rows=16, n_threads=2)

    @pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
    def test_non_finite_paper_vectors_are_refused(self, bad: float) -> None:
        with pytest.raises(ValueError, match="paper_vectors: NaN or infinity in row 1"):
            score_top_k(np.ones((2, 2)), [[1.0, 2.0], [bad, 0.0]], 1)

    def test_a_non_finite_similarity_is_refused(self) -> None:
        with pytest.raises(ValueError, match="similarity: NaN or infinity in row 0"):
            score_top_k(
                np.ones((2, 2)), np.ones((2, 2)), 1, pool=2, similarity=[[np.nan, 0], [0, 1]]
            )

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"pool": 1}, r"pool must be >= k \(2\)"),
            ({"pool": 3, "lam": 1.5}, r"lam must be in \[0, 1\]"),
            ({"pool": 3, "similarity": np.eye(2)}, r"similarity: expected shape \(3, 3\)"),
            ({"exclude": np.zeros((2, 2), bool)}, r"exclude: expected shape \(2, 3\)"),
            ({"exclude": np.zeros((2, 3), int)}, "exclude: expected a bool mask"),
            ({"tie_break": np.zeros((2, 3))}, r"tie_break: expected shape \(3,\)"),
            ({"min_score": float("nan")}, "min_score: NaN"),
            ({"block_rows": 0}, "block_rows must be >= 1"),
        ],
    )
    def test_bad_arguments_are_named(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            score_top_k(np.ones((2, 2)), np.ones((3, 2)), 2, **kwargs)

    def test_widths_must_match(self) -> None:
        with pytest.raises(ValueError, match="paper_vectors: width 3 differs"):
            score_top_k(np.ones((2, 2)), np.ones((3, 3)), 1)

    def test_k_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="k must be >= 1, got 0"):
            score_top_k(np.ones((2, 2)), np.ones((3, 2)), 0)

    def test_mmr_refuses_columns_outside_the_similarity(self) -> None:
        with pytest.raises(ValueError, match="cols: expected columns in"):
            mmr([[0, 3]], [[0.5, 0.4]], np.eye(3), k=1)
