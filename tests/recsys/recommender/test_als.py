"""AlsRidgeMap: the shared contract on a crowded world, plus the map and the fold-in.

Collaborative filtering learns nothing from five users, so the contract world gets a crowd:
``crowded_world`` adds background readers of every topic behind the five named users (who
keep their rows and events), as ``contract.py`` suggests for CF components.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender import PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.als import AlsRidgeMap, _fold_in
from tests.recsys.recommender.contract import (
    HISTORY_PER_TOPIC,
    TOPIC_NAMES,
    A,
    B,
    ComponentContract,
    World,
    make_world,
)

READERS_PER_TOPIC = 8
PAPERS_PER_READER = 3
N_NAMED = 5  # ALICE .. FRANK


class CrowdedWorld(World):
    """A world whose snapshot has a crowd, while the tests score only the five named users."""

    @property
    def users(self) -> UserBlock:
        return self.snapshot.users.take(np.arange(N_NAMED))


def crowded_world(seed: int = 7) -> CrowdedWorld:
    """The contract world plus ``READERS_PER_TOPIC`` background readers of each topic."""
    world = make_world(seed)
    rng = np.random.default_rng(seed)
    users, user, item = world.snapshot.users, [], []
    for topic in range(len(TOPIC_NAMES)):
        for reader in range(READERS_PER_TOPIC):
            row = users.n_users + topic * READERS_PER_TOPIC + reader
            picks = rng.choice(HISTORY_PER_TOPIC, PAPERS_PER_READER, replace=False)
            user += [row] * PAPERS_PER_READER
            item += list(topic * HISTORY_PER_TOPIC + picks)
    n_new, n_crowd = len(user), len(TOPIC_NAMES) * READERS_PER_TOPIC
    crowd = UserBlock(
        user_ids=np.concatenate([users.user_ids, 2000 + np.arange(n_crowd)]),
        history_embeddings=users.history_embeddings,
        event_user=np.concatenate([users.event_user, user]),
        event_item=np.concatenate([users.event_item, item]),
        event_weight=np.concatenate([users.event_weight, np.ones(n_new)]),
        event_age_days=np.concatenate([users.event_age_days, rng.uniform(0, 10, n_new)]),
        interest_embeddings=users.interest_embeddings,
        interest_user=users.interest_user,
    )
    return CrowdedWorld(TrainingSnapshot(crowd, world.snapshot.papers), world.papers, world.topic)


class TestAlsRidgeMap(ComponentContract):
    def make_component(self) -> AlsRidgeMap:
        return AlsRidgeMap(factors=8)

    def make_world(self) -> World:
        return crowded_world()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_new_paper_gets_the_factors_of_warm_papers_of_its_topic() -> None:
    world = crowded_world()
    model = AlsRidgeMap(factors=8).fit(world.snapshot)
    arrays, _ = model.get_state()
    learned = arrays["warm_factors"]  # warm ids are 0..11, in topic order
    topic_mean = [
        learned[t * HISTORY_PER_TOPIC : (t + 1) * HISTORY_PER_TOPIC].mean(0) for t in (A, B)
    ]
    new_a = model.paper_vectors(world.papers.take(world.columns(A)))
    for factors in new_a:
        assert cosine(factors, topic_mean[A]) > 0.9
        assert cosine(factors, topic_mean[A]) > cosine(factors, topic_mean[B]) + 0.5


def test_fold_in_solves_each_users_weighted_least_squares() -> None:
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(6, 3)).astype(np.float32)
    confidence = sp.csr_matrix(
        np.array([[20.0, 0, 5.0, 0, 0, 0], [0, 10.0, 0, -20.0, 0, 0], [0, 0, 0, 0, 0, 0]])
    )
    gram, lam = factors.T @ factors, 0.1
    got = _fold_in(confidence, factors, gram, lam)
    for user, row in enumerate(confidence.toarray()):
        system = gram + lam * np.eye(3)
        rhs = np.zeros(3)
        for source, c in enumerate(row):
            if c:
                system += (abs(c) - 1) * np.outer(factors[source], factors[source])
                rhs += max(c, 0) * factors[source]
        np.testing.assert_allclose(got[user], np.linalg.solve(system, rhs), rtol=1e-4, atol=1e-6)


def test_known_history_papers_fold_in_with_their_learned_factors() -> None:
    world = crowded_world()
    model = AlsRidgeMap(factors=8).fit(world.snapshot)
    alice = world.users.take([0])
    named = replace(alice, history_ids=world.snapshot.papers.paper_ids)
    # ids the model never saw
    strangers = replace(alice, history_ids=world.snapshot.papers.paper_ids + 10_000)
    np.testing.assert_allclose(model.user_vectors(strangers), model.user_vectors(alice))
    assert not np.allclose(model.user_vectors(named), model.user_vectors(alice))
    assert named.take([0]).history_ids is named.history_ids


def test_warm_shrinkage_moves_read_papers_towards_their_learned_factors() -> None:
    world = crowded_world()
    papers = world.snapshot.papers
    mapped = AlsRidgeMap(factors=8).fit(world.snapshot).paper_vectors(papers)
    model = AlsRidgeMap(factors=8, warm_shrinkage=1e-6).fit(world.snapshot)
    learned = model.get_state()[0]["warm_factors"]
    np.testing.assert_allclose(model.paper_vectors(papers), learned, rtol=1e-4, atol=1e-5)
    assert not np.allclose(mapped, learned, atol=1e-3)
    rebuilt = AlsRidgeMap.from_state(*model.get_state())
    np.testing.assert_array_equal(rebuilt.paper_vectors(papers), model.paper_vectors(papers))


def test_history_ids_must_match_the_history() -> None:
    alice = make_world().users
    with pytest.raises(ValueError, match="history_ids"):
        replace(alice, history_ids=np.arange(3))


def test_a_snapshot_without_interactions_is_refused() -> None:
    world = make_world()
    nobody = UserBlock.cold([1], world.snapshot.papers.d)
    empty = TrainingSnapshot(
        UserBlock(
            nobody.user_ids, world.snapshot.papers.embeddings, nobody.event_user,
            nobody.event_item, nobody.event_weight, nobody.event_age_days,
            nobody.interest_embeddings, nobody.interest_user,
        ),
        world.snapshot.papers,
    )  # fmt: skip
    with pytest.raises(ValueError, match="no interactions"):
        AlsRidgeMap(factors=4).fit(empty)


def test_papers_block_must_be_embedded_like_training() -> None:
    model = AlsRidgeMap(factors=4).fit(crowded_world().snapshot)
    with pytest.raises(ValueError, match="columns"):
        model.paper_vectors(PaperBlock(np.array([1]), np.ones((1, 3)), np.zeros(1)))
