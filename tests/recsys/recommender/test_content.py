"""ContentProfile: the shared contract, plus hand-computed profiles and reasons."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import ArrayLike

from recsys.recommender import ContentProfile, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.ranking import top_k
from tests.recsys.recommender.contract import (
    ALICE,
    CAROL,
    DAVE,
    ERIN,
    FRANK,
    HISTORY_PER_TOPIC,
    TOPIC_NAMES,
    B,
    C,
    ComponentContract,
    World,
)

SQRT5, SQRT41 = np.sqrt(5.0), np.sqrt(41.0)
X, Y = [1.0, 0.0], [0.0, 1.0]


def one_user(
    history: ArrayLike,
    events: list[tuple[int, float, float]],
    interests: ArrayLike | None = None,
) -> UserBlock:
    """A block of one user; ``events`` are (history row, weight, age in days)."""
    item, weight, age = (np.array(column) for column in zip(*events, strict=True))
    interests = np.empty((0, 2)) if interests is None else np.asarray(interests)
    return UserBlock(
        np.array([1]), np.asarray(history), np.zeros(len(item), np.int32), item, weight, age,
        interests, np.zeros(len(interests), np.int32),
    )  # fmt: skip


def profile(users: UserBlock, **config: float) -> np.ndarray:
    return ContentProfile(**config).user_vectors(users)[0]


class TestContentProfile(ComponentContract):
    def make_component(self) -> ContentProfile:
        return ContentProfile()


class TestProfile:
    def test_it_is_the_recency_weighted_mean_of_history(self) -> None:
        # Ages 0 and 30 at a 30-day half-life: weights 1 and 0.5, mean (2/3, 1/3).
        users = one_user([X, Y], [(0, 1.0, 0.0), (1, 1.0, 30.0)])
        np.testing.assert_allclose(profile(users), [2 / SQRT5, 1 / SQRT5], rtol=1e-6)

    def test_interests_add_at_half_weight(self) -> None:
        # (2/3, 1/3) + 0.5 * (0, 1) = (2/3, 5/6), i.e. the direction (4, 5).
        users = one_user([X, Y], [(0, 1.0, 0.0), (1, 1.0, 30.0)], interests=[[0.0, 2.0]])
        np.testing.assert_allclose(profile(users), [4 / SQRT41, 5 / SQRT41], rtol=1e-6)

    def test_several_interests_are_averaged(self) -> None:
        users = one_user([X], [(0, 1.0, 0.0)], interests=[Y, Y, [0.0, -1.0]])
        # 1 * X + 0.5 * mean(Y, Y, -Y) = (1, 1/6).
        np.testing.assert_allclose(profile(users), np.array([6.0, 1.0]) / np.sqrt(37), rtol=1e-6)

    def test_the_half_life_is_configurable(self) -> None:
        users = one_user([X, Y], [(0, 1.0, 0.0), (1, 1.0, 10.0)])
        expected = [2 / SQRT5, 1 / SQRT5]
        np.testing.assert_allclose(profile(users, half_life_days=10), expected, rtol=1e-6)

    def test_a_dislike_is_subtracted(self) -> None:
        users = one_user([X, Y], [(0, 1.0, 0.0), (1, -1.0, 0.0)])
        np.testing.assert_allclose(profile(users), [1 / np.sqrt(2), -1 / np.sqrt(2)], rtol=1e-6)

    def test_repeated_events_on_a_paper_add_up(self) -> None:
        users = one_user([X, Y], [(0, 1.0, 0.0), (0, 1.0, 0.0), (1, 1.0, 0.0)])
        np.testing.assert_allclose(profile(users), [2 / SQRT5, 1 / SQRT5], rtol=1e-6)

    def test_the_scale_of_an_embedding_does_not_matter(self) -> None:
        users = one_user([[10.0, 0.0], [0.0, 0.1]], [(0, 1.0, 0.0), (1, 1.0, 30.0)])
        np.testing.assert_allclose(profile(users), [2 / SQRT5, 1 / SQRT5], rtol=1e-6)

    def test_a_years_old_history_keeps_its_shape(self) -> None:
        # 0.5 ** (1e6 / 30) underflows to 0; measuring from the newest event avoids 0 / 0.
        users = one_user([X, Y], [(0, 1.0, 1e6), (1, 1.0, 1e6 + 30)])
        np.testing.assert_allclose(profile(users), [2 / SQRT5, 1 / SQRT5], rtol=1e-6)

    def test_a_like_and_dislike_of_one_paper_leave_a_cold_profile(self) -> None:
        users = one_user([X, Y], [(0, 1.0, 0.0), (0, -1.0, 0.0)])
        np.testing.assert_array_equal(profile(users), 0.0)

    def test_zero_weights_leave_a_cold_profile(self) -> None:
        users = one_user([X, Y], [(0, 0.0, 0.0)])
        np.testing.assert_array_equal(profile(users), 0.0)

    def test_paper_vectors_are_unit_rows_and_a_zero_row_stays_zero(self) -> None:
        papers = PaperBlock(np.array([1, 2]), np.array([[3.0, 4.0], [0.0, 0.0]]), np.zeros(2))
        np.testing.assert_allclose(ContentProfile().paper_vectors(papers), [[0.6, 0.8], [0, 0]])

    def test_scores_are_cosines(self) -> None:
        users = one_user([X], [(0, 1.0, 0.0)])
        papers = PaperBlock(np.array([1, 2]), np.array([[1.0, 1.0], [-2.0, 0.0]]), np.zeros(2))
        scores = ContentProfile().score(users, papers)
        np.testing.assert_allclose(scores, [[1 / np.sqrt(2), -1.0]], rtol=1e-6)

    def test_a_disliked_topic_scores_below_unrelated_ones(self, world: World) -> None:
        scores = ContentProfile().score(world.users, world.papers)[DAVE]
        assert scores[world.columns(B)].max() < scores[world.columns(C)].min()
        assert scores[world.columns(B)].max() < 0

    @pytest.fixture()
    def world(self) -> World:
        return TestContentProfile().make_world()


class TestConfig:
    @pytest.mark.parametrize("half_life", [0.0, -1.0, float("nan")])
    def test_a_non_positive_half_life_is_refused(self, half_life: float) -> None:
        with pytest.raises(ValueError, match="half_life_days must be > 0"):
            ContentProfile(half_life_days=half_life)

    def test_a_negative_interest_weight_is_refused(self) -> None:
        with pytest.raises(ValueError, match="interest_weight must be >= 0, got -0.1"):
            ContentProfile(interest_weight=-0.1)

    def test_state_is_the_config(self) -> None:
        state = ContentProfile(half_life_days=7, interest_weight=1).get_state()
        assert state == ({}, {"half_life_days": 7.0, "interest_weight": 1.0})

    def test_from_state_refuses_unknown_keys(self) -> None:
        with pytest.raises(ValueError, match=r"unknown keys \['half_life'\]"):
            ContentProfile.from_state({}, {"half_life": 3})

    def test_from_state_refuses_arrays(self) -> None:
        with pytest.raises(ValueError, match="keeps no arrays"):
            ContentProfile.from_state({"w": np.zeros(2)}, {})


class TestExplain:
    TITLES = ["Attention", "Graphs", "Bandits"]
    LABELS = ["graph learning"]

    @pytest.fixture()
    def users(self) -> UserBlock:
        # User 0: liked Attention today, Graphs 60 days ago (weight 1/4), disliked Bandits,
        # and said they like graph learning. Coefficients 4/9, 1/9, -4/9; interest 1/2.
        # User 1 is cold.
        eye = np.eye(3)
        return UserBlock(
            np.array([1, 2]), eye, np.array([0, 0, 0]), np.array([0, 1, 2]),
            np.array([1.0, 1.0, -1.0]), np.array([0.0, 60.0, 0.0]), eye[[1]], np.array([0]),
        )  # fmt: skip

    @pytest.fixture()
    def papers(self) -> PaperBlock:
        return PaperBlock(np.array([10, 11, 12]), [[1, 0.1, 0], [0, 1, 0], [0, 0, 1]], np.zeros(3))

    def explain(self, users: UserBlock, papers: PaperBlock, pairs: list[tuple[int, int]]):
        user_rows, paper_rows = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
        return ContentProfile().explain(
            users, papers, user_rows, paper_rows,
            history_titles=self.TITLES, interest_labels=self.LABELS,
        )  # fmt: skip

    def test_each_pair_gets_the_source_that_adds_most(
        self, users: UserBlock, papers: PaperBlock
    ) -> None:
        reasons = self.explain(users, papers, [(0, 0), (0, 1), (0, 2), (1, 0)])
        assert reasons == [
            "Similar to “Attention” you read",  # 4/9 from Attention beats 1/20 from the interest
            "Matches your interest “graph learning”",  # 1/2 beats 1/9 from Graphs
            "New in your field",  # only the disliked Bandits is close
            "New in your field",  # a cold user
        ]

    def test_no_pairs_no_reasons(self, users: UserBlock, papers: PaperBlock) -> None:
        assert self.explain(users, papers, []) == []

    def test_titles_must_match_the_history(self, users: UserBlock, papers: PaperBlock) -> None:
        with pytest.raises(ValueError, match=r"history_titles: expected one label .* \(3\), got 2"):
            ContentProfile().explain(
                users, papers, [0], [0], history_titles=["a", "b"], interest_labels=self.LABELS
            )

    @pytest.mark.parametrize(
        ("user_rows", "paper_rows", "message"),
        [
            ([0, 1], [0], "expected two 1-D arrays of one length"),
            ([2], [0], r"user_rows: expected integer rows in \[0, 2\)"),
            ([0], [-1], r"paper_rows: expected integer rows in \[0, 3\)"),
            ([0.0], [0], "user_rows: expected integer rows"),
        ],
    )
    def test_pairs_must_be_rows_of_the_blocks(
        self,
        users: UserBlock,
        papers: PaperBlock,
        user_rows: list[float],
        paper_rows: list[int],
        message: str,
    ) -> None:
        with pytest.raises(ValueError, match=message):
            ContentProfile().explain(
                users, papers, user_rows, paper_rows,
                history_titles=self.TITLES, interest_labels=self.LABELS,
            )  # fmt: skip

    def test_a_digest_in_the_known_world_reads_right(self) -> None:
        world = TestContentProfile().make_world()
        model = ContentProfile()
        cols, _ = top_k(model.score(world.users, world.papers), 3)
        user_rows = np.repeat(np.arange(world.users.n_users), 3)
        titles = [
            f"Topic {TOPIC_NAMES[row // HISTORY_PER_TOPIC]} paper {row % HISTORY_PER_TOPIC}"
            for row in range(len(world.users.history_embeddings))
        ]
        reasons = model.explain(
            world.users, world.papers, user_rows, cols.ravel(),
            history_titles=titles, interest_labels=["topic C"],
        )  # fmt: skip
        by_user = [reasons[3 * row : 3 * row + 3] for row in range(world.users.n_users)]
        assert all(r.startswith("Similar to “Topic A paper") for r in by_user[ALICE])
        assert all(r.startswith("Similar to “Topic") for r in by_user[CAROL])
        assert by_user[ERIN] == ["New in your field"] * 3
        assert by_user[FRANK] == ["Matches your interest “topic C”"] * 3


# The data blocks' boundary checks. They belong in tests/recsys/recommender/test_base.py,
# which this change was not allowed to create; move them there when it exists.
GOOD_USERS = {
    "user_ids": [1, 2],
    "history_embeddings": np.eye(3),
    "event_user": [0, 1],
    "event_item": [0, 2],
    "event_weight": [1.0, -1.0],
    "event_age_days": [0.0, 3.0],
    "interest_embeddings": np.zeros((1, 3)),
    "interest_user": [1],
}


class TestBlocks:
    def test_arrays_are_cast_to_the_declared_dtypes(self) -> None:
        users = UserBlock(**GOOD_USERS)  # type: ignore[arg-type]
        assert users.user_ids.dtype == np.int64 and users.event_user.dtype == np.int32
        assert users.history_embeddings.dtype == users.event_weight.dtype == np.float32

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("user_ids", [1, 1], "UserBlock.user_ids: ids must be unique"),
            ("history_embeddings", np.zeros(3), "history_embeddings: expected a 2-D array"),
            ("event_user", [0, 2], r"event_user: values must be rows of the block, in \[0, 2\)"),
            ("event_user", [0, 2**33], "event_user: values do not fit in int32"),
            ("event_item", [0, 3], "event_item: values must be rows of history_embeddings"),
            ("event_item", [0.0, 1.0], "event_item: expected int32 values, got float64"),
            ("event_weight", [1.0], "event_weight: expected 2 rows like event_user, got 1"),
            ("event_weight", [1.0, np.nan], "event_weight: values must be finite"),
            ("event_age_days", [0.0, -1.0], "event_age_days: values must be finite and >= 0"),
            ("interest_embeddings", np.zeros((1, 4)), "expected d=3 columns like history"),
            ("interest_user", [0, 1], "interest_user: expected 1 rows like interest_embeddings"),
            ("interest_user", [5], "interest_user: values must be rows of the block"),
        ],
    )
    def test_a_bad_user_block_names_the_field(
        self, field: str, value: object, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            UserBlock(**{**GOOD_USERS, field: value})  # type: ignore[arg-type]

    def test_a_bad_paper_block_names_the_field(self) -> None:
        with pytest.raises(ValueError, match="PaperBlock.age_days: values must be finite and >= 0"):
            PaperBlock(np.array([1]), np.zeros((1, 2)), np.array([-1.0]))
        with pytest.raises(
            ValueError, match="PaperBlock.embeddings: expected 1 rows like paper_ids"
        ):
            PaperBlock(np.array([1]), np.zeros((2, 2)), np.array([0.0]))

    def test_take_keeps_each_users_events_and_interests(self) -> None:
        users = UserBlock(**GOOD_USERS).take([1])  # type: ignore[arg-type]
        assert users.user_ids.tolist() == [2]
        assert users.event_user.tolist() == [0] and users.event_item.tolist() == [2]
        assert users.interest_user.tolist() == [0]
        with pytest.raises(ValueError, match="rows: expected unique rows of the block"):
            UserBlock(**GOOD_USERS).take([0, 0])  # type: ignore[arg-type]

    def test_cold_users_have_nothing(self) -> None:
        users = UserBlock.cold([5, 6], d=3)
        assert users.n_users == 2 and users.d == 3 and len(users.event_user) == 0

    def test_a_snapshot_counts_positive_interactions(self) -> None:
        users = UserBlock(**{**GOOD_USERS, "event_user": [0, 0], "event_item": [0, 0]})  # type: ignore[arg-type]
        papers = PaperBlock(np.array([7, 8, 9]), np.eye(3), np.zeros(3))
        snapshot = TrainingSnapshot(users, papers)
        assert snapshot.interactions().toarray().tolist() == [[1, 0, 0], [0, 0, 0]]
        assert snapshot.interactions(positive_only=False).nnz == 0  # +1 and -1 cancel

    def test_a_snapshot_history_must_be_its_papers(self) -> None:
        papers = PaperBlock(np.array([7, 8]), np.eye(2, 3), np.zeros(2))
        with pytest.raises(ValueError, match="event_item indexes papers"):
            TrainingSnapshot(UserBlock(**GOOD_USERS), papers)  # type: ignore[arg-type]
