"""Hybrid: the shared contract on a crowded world, the one-dot-product blend, and its weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommender import ContentProfile, load_component
from recsys.recommender.als import AlsRidgeMap
from recsys.recommender.hybrid import Hybrid, fit_blend_weights, score_spread
from recsys.recommender.linear import PerUserLinear
from recsys.recommender.popularity import PopularityPrior
from tests.recsys.recommender.contract import ComponentContract, World
from tests.recsys.recommender.test_als import crowded_world
from tests.recsys.recommender.test_lightfm import make_lightfm


def make_hybrid() -> Hybrid:
    components = [
        ContentProfile(),
        PerUserLinear(),
        AlsRidgeMap(factors=8),
        make_lightfm(),
        PopularityPrior(n_topics=1),
    ]
    # The global prior is not personalised; kept small so it only breaks near-ties.
    return Hybrid(components, weights=[1.0, 1.0, 0.5, 0.2, 0.01])


class TestHybrid(ComponentContract):
    def make_component(self) -> Hybrid:
        return make_hybrid()

    def make_world(self) -> World:
        return crowded_world()


def test_the_blend_is_the_weighted_sum_of_component_scores() -> None:
    world = crowded_world()
    hybrid = make_hybrid().fit(world.snapshot)
    expected = sum(
        weight * component.score(world.users, world.papers)
        for weight, component in zip(hybrid.weights, hybrid.components, strict=True)
    )
    np.testing.assert_allclose(
        hybrid.score(world.users, world.papers), expected, rtol=1e-5, atol=1e-5
    )


def test_the_popularity_term_is_one_user_column() -> None:
    world = crowded_world()
    hybrid = make_hybrid().fit(world.snapshot)
    widths = [c.user_vectors(world.users).shape[1] for c in hybrid.components]
    last = hybrid.user_vectors(world.users)[:, -1]
    assert widths[-1] == 1
    np.testing.assert_allclose(last, [0.01, 0.01, 0.01, 0.0, 0.01])  # ERIN is cold


def test_linear_components_fold_into_one_embedding_wide_block() -> None:
    world = crowded_world()
    hybrid = make_hybrid().fit(world.snapshot)
    lightfm_width = hybrid.components[3].paper_vectors(world.papers).shape[1]
    # content + linear + 8 ALS factors become d columns; LightFM and popularity follow.
    expected = world.papers.d + lightfm_width + 1
    assert hybrid.user_vectors(world.users).shape[1] == expected
    assert hybrid.paper_vectors(world.papers).shape[1] == expected


def test_a_zero_weight_component_is_left_out_of_the_vectors() -> None:
    world = crowded_world()
    hybrid = make_hybrid().fit(world.snapshot).with_weights([1.0, 1.0, 0.5, 0.0, 0.01])
    assert hybrid.user_vectors(world.users).shape[1] == world.papers.d + 1
    expected = sum(
        weight * component.score(world.users, world.papers)
        for weight, component in zip(hybrid.weights, hybrid.components, strict=True)
    )
    np.testing.assert_allclose(
        hybrid.score(world.users, world.papers), expected, rtol=1e-5, atol=1e-5
    )


def test_weights_and_components_survive_the_state() -> None:
    world = crowded_world()
    hybrid = make_hybrid().fit(world.snapshot).with_weights([2.0, 0.0, 1.0, 1.0, 0.5])
    arrays, config = hybrid.get_state()
    rebuilt = load_component("hybrid", arrays, config)
    assert isinstance(rebuilt, Hybrid)
    np.testing.assert_array_equal(rebuilt.weights, [2.0, 0.0, 1.0, 1.0, 0.5])
    assert rebuilt.component_names == ["content", "linear", "als", "lightfm", "popularity"]


def test_a_state_with_foreign_arrays_is_refused() -> None:
    arrays, config = make_hybrid().fit(crowded_world().snapshot).get_state()
    with pytest.raises(ValueError, match="no listed component"):
        Hybrid.from_state({**arrays, "9.ghost.x": np.zeros(1)}, config)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0, 0, 0, 0], [0.0] * 5, [np.nan] * 5])
def test_bad_weights_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        make_hybrid().with_weights(weights)


def test_components_need_distinct_names() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Hybrid([ContentProfile(), ContentProfile()])


# --- fit_blend_weights ---------------------------------------------------------------------
def validation_case(seed: int = 0) -> tuple[list[np.ndarray], sp.csr_matrix]:
    """200 users x 400 candidates, 3 relevant each; ``good`` ranks them high, ``noise`` not."""
    rng = np.random.default_rng(seed)
    relevant = np.zeros((200, 400), bool)
    for row in relevant:
        row[rng.choice(400, 3, replace=False)] = True
    good = rng.normal(size=relevant.shape) + 2.5 * relevant
    noise = 100 * rng.normal(size=relevant.shape)  # loud, and uninformative
    return [good.astype(np.float32), noise.astype(np.float32)], sp.csr_matrix(relevant)


def test_a_component_that_only_adds_noise_is_dropped() -> None:
    scores, relevant = validation_case()
    weights = fit_blend_weights(scores, relevant, ks=(5, 10))
    assert weights[0] > 0
    assert weights[1] == 0.0


def test_two_halves_of_the_signal_are_both_kept() -> None:
    rng = np.random.default_rng(1)
    scores, relevant = validation_case()
    mask = relevant.toarray()
    first = rng.normal(size=mask.shape) + 2.0 * (mask & (rng.random(mask.shape) < 0.5))
    second = 10 * (rng.normal(size=mask.shape) + 2.0 * mask)
    weights = fit_blend_weights([first, second], relevant, ks=(5, 10))
    assert weights.min() > 0


def test_excluded_pairs_are_never_counted() -> None:
    scores, relevant = validation_case()
    # Exclude every relevant pair but one per user: no weights can do better than 1 in 3.
    exclude = sp.csr_matrix(relevant.toarray() & (np.cumsum(relevant.toarray(), 1) > 1))
    weights = fit_blend_weights(scores, relevant, exclude=exclude, ks=(5,))
    assert weights[0] > 0


def test_the_spread_ignores_excluded_entries() -> None:
    scores = np.array([[0.0, 2.0, 1000.0]])
    assert score_spread(scores, sp.csr_matrix([[0, 0, 1]])) == pytest.approx(1.0)
    assert score_spread(np.zeros((2, 2))) == 1.0


def test_blocks_must_match_the_relevant_matrix() -> None:
    scores, relevant = validation_case()
    with pytest.raises(ValueError, match="shape"):
        fit_blend_weights([scores[0][:, :10]], relevant)
    with pytest.raises(ValueError, match="no validation user"):
        fit_blend_weights(scores, sp.csr_matrix(relevant.shape))
