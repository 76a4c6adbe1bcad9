"""LightFMComponent: the shared contract on a crowded world, plus its features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender import PaperBlock, TrainingSnapshot
from recsys.recommender.lightfm_component import LightFMComponent, _largest_per_row
from tests.recsys.recommender.contract import A, ComponentContract, World
from tests.recsys.recommender.test_als import crowded_world


def make_lightfm(**config: object) -> LightFMComponent:
    return LightFMComponent(no_components=8, epochs=30, **config)  # type: ignore[arg-type]


class TestLightFM(ComponentContract):
    def make_component(self) -> LightFMComponent:
        return make_lightfm()

    def make_world(self) -> World:
        return crowded_world()


def featured(world: World) -> tuple[TrainingSnapshot, PaperBlock, PaperBlock]:
    """The world with one extra sparse feature per topic ("tag A", "tag B", "tag C")."""
    train = world.snapshot.papers
    train_topic = np.repeat(np.arange(3), len(train.paper_ids) // 3)

    def tags(topic: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(
            (np.ones(len(topic)), (np.arange(len(topic)), topic)), shape=(len(topic), 3)
        )

    papers = PaperBlock(train.paper_ids, train.embeddings, train.age_days, tags(train_topic))
    new = world.papers
    candidates = PaperBlock(new.paper_ids, new.embeddings, new.age_days, tags(world.topic))
    return TrainingSnapshot(world.snapshot.users, papers), papers, candidates


def test_extra_features_are_learned_and_required_at_scoring() -> None:
    world = crowded_world()
    snapshot, _, candidates = featured(world)
    model = make_lightfm().fit(snapshot)
    scores = model.score(world.users, candidates)[0]  # ALICE reads topic A
    others = np.setdiff1d(np.arange(len(scores)), world.columns(A))
    assert scores[world.columns(A)].min() > scores[others].max()
    with pytest.raises(ValueError, match="extra paper features"):
        model.paper_vectors(world.papers)


def test_a_state_with_extra_features_round_trips() -> None:
    world = crowded_world()
    snapshot, _, candidates = featured(world)
    model = make_lightfm().fit(snapshot)
    arrays, config = model.get_state()
    rebuilt = LightFMComponent.from_state(arrays, config)
    np.testing.assert_array_equal(
        rebuilt.score(world.users, candidates), model.score(world.users, candidates)
    )


def test_a_featured_block_keeps_its_features_when_sliced() -> None:
    _, papers, _ = featured(crowded_world())
    part = papers.take([3, 0])
    np.testing.assert_array_equal(part.features.toarray(), papers.features[[3, 0]].toarray())


def test_features_must_be_non_negative_and_one_row_per_paper() -> None:
    _, papers, _ = featured(crowded_world())
    with pytest.raises(ValueError, match="rows"):
        PaperBlock(papers.paper_ids, papers.embeddings, papers.age_days, sp.eye(2))
    negative = -sp.csr_matrix(papers.features)
    with pytest.raises(ValueError, match=">= 0"):
        PaperBlock(papers.paper_ids, papers.embeddings, papers.age_days, negative)


def test_a_user_keeps_only_their_strongest_topics() -> None:
    mix = sp.csr_matrix(np.array([[0.1, 0.5, 0.2, 0.5], [0.0, 0.3, 0.0, 0.0]]))
    kept = _largest_per_row(mix, 2).toarray()
    np.testing.assert_array_equal(kept, [[0.0, 0.5, 0.0, 0.5], [0.0, 0.3, 0.0, 0.0]])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="loss"):
        LightFMComponent(loss="hinge")
    with pytest.raises(ValueError, match=">= 1"):
        LightFMComponent(levels=())
