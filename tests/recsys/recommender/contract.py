"""The contract every recommender component passes, on a small world with known answers.

Subclass ``ComponentContract`` in a ``Test...`` class and implement ``make_component``; a
component that needs a bigger world (e.g. collaborative filtering) overrides ``make_world``.

The world: three orthonormal topic directions A, B, C in R^16; papers are a topic plus a
little noise. Training papers (the users' history) are 4 per topic; candidates are 5 new
papers per topic, never seen in training, so they are scored from their content alone.

Users (rows of ``World.users``):

- ALICE liked three topic-A papers.
- CAROL liked one A paper and one B paper.
- DAVE did what CAROL did, then said "less like this" to two other B papers.
- ERIN is a cold start: no events, no interests.
- FRANK has no events, only an explicit interest in topic C.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from recsys.recommender import COMPONENTS, Component, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.base import load_component
from recsys.recommender.ranking import top_k
from recsys.training.artifacts import load_artifact, write_artifact

D = 16
A, B, C = 0, 1, 2
TOPIC_NAMES = ("A", "B", "C")
HISTORY_PER_TOPIC = 4
CANDIDATES_PER_TOPIC = 5
NOISE = 0.1
ALICE, CAROL, DAVE, ERIN, FRANK = range(5)


def history_row(topic: int, j: int) -> int:
    """Row in the training papers of topic ``topic``'s ``j``-th paper."""
    return topic * HISTORY_PER_TOPIC + j


@dataclass(frozen=True)
class World:
    snapshot: TrainingSnapshot
    papers: PaperBlock  # new candidates, unseen in training
    topic: NDArray[np.int64]  # topic of each candidate

    @property
    def users(self) -> UserBlock:
        return self.snapshot.users

    def columns(self, topic: int) -> NDArray[np.intp]:
        return np.flatnonzero(self.topic == topic)


def _topic_papers(
    rng: np.random.Generator, topics: NDArray[np.float64], per_topic: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    topic = np.repeat(np.arange(len(topics)), per_topic)
    return topics[topic] + NOISE * rng.normal(size=(len(topic), D)), topic


# (user, topic, j, weight, age_days)
EVENTS = [
    (ALICE, A, 0, 1.0, 1.0),
    (ALICE, A, 1, 1.0, 5.0),
    (ALICE, A, 2, 1.0, 20.0),
    (CAROL, A, 0, 1.0, 2.0),
    (CAROL, B, 0, 1.0, 2.0),
    (DAVE, A, 0, 1.0, 2.0),
    (DAVE, B, 0, 1.0, 2.0),
    (DAVE, B, 1, -1.0, 1.0),
    (DAVE, B, 2, -1.0, 1.0),
]


def make_world(seed: int = 7) -> World:
    """The known-answer world described in the module docstring."""
    rng = np.random.default_rng(seed)
    topics = np.linalg.qr(rng.normal(size=(D, 3)))[0].T  # 3 orthonormal rows
    history, _ = _topic_papers(rng, topics, HISTORY_PER_TOPIC)
    candidates, topic = _topic_papers(rng, topics, CANDIDATES_PER_TOPIC)
    train_papers = PaperBlock(np.arange(len(history)), history, np.full(len(history), 30.0))
    user, hist_topic, j, weight, age = (np.array(column) for column in zip(*EVENTS, strict=True))
    users = UserBlock(
        user_ids=np.arange(5) + 1000,
        history_embeddings=train_papers.embeddings,
        event_user=user,
        event_item=hist_topic * HISTORY_PER_TOPIC + j,
        event_weight=weight,
        event_age_days=age,
        interest_embeddings=topics[[C]] + NOISE * rng.normal(size=(1, D)),
        interest_user=np.array([FRANK]),
    )
    papers = PaperBlock(np.arange(len(topic)) + 500, candidates, rng.uniform(0, 3, len(topic)))
    return World(TrainingSnapshot(users, train_papers), papers, topic)


def ranks(scores: NDArray[np.float32]) -> NDArray[np.intp]:
    """Rank of every column in its row, 0 = best (ties: lower column first)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(scores.shape[1])[None, :], axis=1)
    return out


class ComponentContract:
    """Tests every ``Component`` must pass. Subclasses implement ``make_component``."""

    def make_component(self) -> Component:
        raise NotImplementedError

    def make_world(self) -> World:
        return make_world()

    @pytest.fixture()
    def world(self) -> World:
        return self.make_world()

    @pytest.fixture()
    def fitted(self, world: World) -> Component:
        return self.make_component().fit(world.snapshot)

    def test_it_is_registered_under_its_name(self) -> None:
        component = self.make_component()
        assert type(component) in COMPONENTS
        assert [cls.name for cls in COMPONENTS].count(component.name) == 1

    def test_fit_returns_the_component(self, world: World) -> None:
        component = self.make_component()
        assert component.fit(world.snapshot) is component

    def test_shapes_and_dtypes(self, fitted: Component, world: World) -> None:
        users, papers = fitted.user_vectors(world.users), fitted.paper_vectors(world.papers)
        assert users.dtype == papers.dtype == np.float32
        assert users.shape[0] == world.users.n_users
        assert papers.shape[0] == world.papers.n_papers
        assert users.shape[1] == papers.shape[1]
        scores = fitted.score(world.users, world.papers)
        assert scores.dtype == np.float32
        assert scores.shape == (world.users.n_users, world.papers.n_papers)

    def test_score_is_the_dot_product_of_user_and_paper_vectors(
        self, fitted: Component, world: World
    ) -> None:
        users, papers = fitted.user_vectors(world.users), fitted.paper_vectors(world.papers)
        np.testing.assert_allclose(
            fitted.score(world.users, world.papers), users @ papers.T, rtol=1e-5, atol=1e-6
        )

    def test_a_liked_topic_ranks_new_papers_of_it_above_other_topics(
        self, fitted: Component, world: World
    ) -> None:
        scores = fitted.score(world.users, world.papers)[ALICE]
        others = np.concatenate([world.columns(B), world.columns(C)])
        assert scores[world.columns(A)].min() > scores[others].max()

    def test_less_like_this_pushes_that_topic_down(self, fitted: Component, world: World) -> None:
        scores = fitted.score(world.users, world.papers)
        b_rank = ranks(scores)[:, world.columns(B)].mean(axis=1)
        assert b_rank[DAVE] > b_rank[CAROL]
        assert scores[DAVE, world.columns(A)].min() > scores[DAVE, world.columns(B)].max()

    def test_a_cold_start_user_scores_zero_everywhere(
        self, fitted: Component, world: World
    ) -> None:
        np.testing.assert_array_equal(fitted.user_vectors(world.users)[ERIN], 0.0)
        np.testing.assert_array_equal(fitted.score(world.users, world.papers)[ERIN], 0.0)

    def test_a_cold_start_user_gets_the_newest_papers(
        self, fitted: Component, world: World
    ) -> None:
        scores = fitted.score(world.users, world.papers)
        cols, _ = top_k(scores, 3, tie_break=-world.papers.age_days)
        np.testing.assert_array_equal(cols[ERIN], np.argsort(world.papers.age_days)[:3])

    def test_interests_alone_rank_that_topic_first(self, fitted: Component, world: World) -> None:
        scores = fitted.score(world.users, world.papers)[FRANK]
        others = np.concatenate([world.columns(A), world.columns(B)])
        assert scores[world.columns(C)].min() > scores[others].max()

    def test_state_round_trip_scores_identically(self, fitted: Component, world: World) -> None:
        arrays, config = fitted.get_state()
        config = json.loads(json.dumps(config))  # the config must be plain JSON
        assert not any(array.dtype.hasobject for array in arrays.values())
        rebuilt = load_component(fitted.name, arrays, config)
        assert type(rebuilt) is type(fitted)
        np.testing.assert_array_equal(
            rebuilt.score(world.users, world.papers), fitted.score(world.users, world.papers)
        )

    def test_state_survives_an_artifact_round_trip(
        self, fitted: Component, world: World, tmp_path: Path
    ) -> None:
        arrays, config = fitted.get_state()
        write_artifact(tmp_path, arrays, {"component": fitted.name, "config": config}, version="v1")
        loaded = load_artifact(tmp_path, "v1")
        rebuilt = load_component(
            loaded.manifest["component"], loaded.arrays, loaded.manifest["config"]
        )
        np.testing.assert_array_equal(
            rebuilt.score(world.users, world.papers), fitted.score(world.users, world.papers)
        )

    def test_it_is_deterministic(self, world: World) -> None:
        first = self.make_component().fit(world.snapshot).score(world.users, world.papers)
        second = self.make_component().fit(world.snapshot).score(world.users, world.papers)
        np.testing.assert_array_equal(first, second)

    def test_a_batch_scores_like_its_users_one_by_one(
        self, fitted: Component, world: World
    ) -> None:
        batch = fitted.score(world.users, world.papers)
        one_by_one = [fitted.score(world.users.take([row]), world.papers)[0] for row in range(5)]
        np.testing.assert_allclose(np.stack(one_by_one), batch, rtol=1e-5, atol=1e-6)

    def test_a_subset_of_papers_scores_like_those_columns(
        self, fitted: Component, world: World
    ) -> None:
        rows = np.array([7, 0, 11])
        np.testing.assert_allclose(
            fitted.score(world.users, world.papers.take(rows)),
            fitted.score(world.users, world.papers)[:, rows],
            rtol=1e-5,
            atol=1e-6,
        )

    def test_papers_embedded_by_another_model_are_refused(
        self, fitted: Component, world: World
    ) -> None:
        other = PaperBlock(np.array([1]), np.ones((1, D // 2)), np.zeros(1))
        with pytest.raises(ValueError):
            fitted.score(world.users, other)
