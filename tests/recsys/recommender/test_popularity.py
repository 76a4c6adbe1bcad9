"""PopularityPrior: the shared contract, plus the prior's known answers."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.recommender import PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.popularity import PopularityPrior
from tests.recsys.recommender.contract import ComponentContract

X, Y = [1.0, 0.0], [0.0, 1.0]


class TestPopularityPrior(ComponentContract):
    def make_component(self) -> PopularityPrior:
        return PopularityPrior()


def snapshot_with_readers(readers: list[int]) -> TrainingSnapshot:
    """Papers alternating between directions X and Y; paper i has ``readers[i]`` readers."""
    papers = np.array([X if i % 2 == 0 else Y for i in range(len(readers))])
    block = PaperBlock(np.arange(len(papers)), papers, np.zeros(len(papers)))
    user = np.arange(sum(readers))
    item = np.repeat(np.arange(len(readers)), readers)
    n = len(user)
    users = UserBlock(
        user, papers, user, item, np.ones(n), np.zeros(n), np.empty((0, 2)), np.empty(0, np.int32)
    )
    return TrainingSnapshot(users, block)


def new_papers(embeddings: list[list[float]], ages: list[float]) -> PaperBlock:
    return PaperBlock(np.arange(len(ages)) + 100, np.array(embeddings), np.array(ages))


def test_a_new_paper_gets_the_readers_of_papers_like_it() -> None:
    # X papers have 6 readers, Y papers 1: with a negligible ridge the regression of
    # log(1 + readers) is exact, so a new X paper's prior is 7 and a new Y paper's 2.
    model = PopularityPrior(n_topics=1, ridge=1e-9).fit(snapshot_with_readers([6, 1, 6, 1]))
    np.testing.assert_allclose(model.prior(new_papers([X, Y], [0.0, 0.0])), [7.0, 2.0], rtol=1e-4)


def test_more_shrinkage_pulls_priors_together() -> None:
    snapshot = snapshot_with_readers([6, 1, 6, 1])
    sharp = PopularityPrior(n_topics=1, ridge=1e-9).fit(snapshot).prior(new_papers([X, Y], [0, 0]))
    shrunk = PopularityPrior(n_topics=1, ridge=1.0).fit(snapshot).prior(new_papers([X, Y], [0, 0]))
    assert sharp[0] / sharp[1] > shrunk[0] / shrunk[1] > 1


def test_the_prior_halves_every_recency_half_life() -> None:
    model = PopularityPrior(n_topics=1, recency_half_life_days=10).fit(
        snapshot_with_readers([3, 1, 3, 1])
    )
    prior = model.prior(new_papers([X, X], [0.0, 10.0]))
    np.testing.assert_allclose(prior[1], prior[0] / 2, rtol=1e-6)


def test_with_one_topic_it_is_a_constant_user_column_times_the_prior() -> None:
    model = PopularityPrior(n_topics=1).fit(snapshot_with_readers([3, 1, 3, 1]))
    users = UserBlock(
        np.array([1, 2]), np.array([Y]), np.array([0]), np.array([0]), np.ones(1), np.zeros(1),
        np.empty((0, 2)), np.empty(0, np.int32),
    )  # fmt: skip
    papers = new_papers([X, Y], [0.0, 0.0])
    np.testing.assert_array_equal(model.user_vectors(users), [[1.0], [0.0]])
    np.testing.assert_allclose(model.score(users, papers)[0], model.prior(papers), rtol=1e-6)


def test_a_user_shares_out_over_topics_and_a_dislike_counts_against() -> None:
    model = PopularityPrior(n_topics=2, min_papers_per_topic=1).fit(
        snapshot_with_readers([2, 2, 2, 2])
    )
    # Three likes of X, two dislikes of Y: shares 3 / 5 and -2 / 5.
    users = UserBlock(
        np.array([1]), np.array([X, Y]), np.zeros(5, np.int32), np.array([0, 0, 0, 1, 1]),
        np.array([1.0, 1.0, 1.0, -1.0, -1.0]), np.zeros(5), np.empty((0, 2)),
        np.empty(0, np.int32),
    )  # fmt: skip
    share = model.user_vectors(users)[0]
    topic_of_x = np.argmax(model.paper_vectors(new_papers([X], [0.0]))[0])
    np.testing.assert_allclose(share[topic_of_x], 0.6, rtol=1e-6)
    np.testing.assert_allclose(share[1 - topic_of_x], -0.4, rtol=1e-6)


def test_a_paper_without_content_belongs_to_no_topic() -> None:
    model = PopularityPrior(n_topics=1).fit(snapshot_with_readers([1, 1]))
    np.testing.assert_array_equal(model.paper_vectors(new_papers([[0.0, 0.0]], [0.0])), [[0.0]])


@pytest.mark.parametrize("config", [{"n_topics": 0}, {"ridge": 0.0}, {"interest_weight": -1.0}])
def test_bad_settings_are_refused(config: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PopularityPrior(**config)  # type: ignore[arg-type]
