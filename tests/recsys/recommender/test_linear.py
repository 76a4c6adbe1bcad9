"""PerUserLinear: the shared contract, plus hand-computed ridge weights and the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.recommender import ContentProfile, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.linear import PerUserLinear
from tests.recsys.recommender.contract import ComponentContract

X, D = [1.0, 0.0], [1 / np.sqrt(2), 1 / np.sqrt(2)]


class TestPerUserLinear(ComponentContract):
    def make_component(self) -> PerUserLinear:
        return PerUserLinear()


def users_liking(history: list[list[float]], liked: list[int]) -> UserBlock:
    n = len(liked)
    return UserBlock(
        np.array([1]), np.array(history), np.zeros(n, np.int32), np.array(liked), np.ones(n),
        np.zeros(n), np.empty((0, 2)), np.empty(0, np.int32),
    )  # fmt: skip


def fitted_on(papers: list[list[float]], **config: float) -> PerUserLinear:
    """Fit on a catalogue of ``papers`` (the ridge model learns from papers, not users)."""
    block = PaperBlock(np.arange(len(papers)), np.array(papers), np.zeros(len(papers)))
    nobody = users_liking(papers, [])
    return PerUserLinear(**config).fit(TrainingSnapshot(nobody, block))


def test_it_is_the_ridge_solution_with_the_shared_gram() -> None:
    # Papers X and D: E^T E = [[1.5, .5], [.5, .5]], mean eigenvalue 1, so lam = ridge = 1 and
    # w ∝ [[2.5, .5], [.5, 1.5]]^-1 (1, 0) = (1.5, -0.5) / 3.5, i.e. the direction (3, -1).
    model = fitted_on([X, D], ridge=1.0, min_labels=1)
    weights = model.user_vectors(users_liking([X, D], [0]))[0]
    np.testing.assert_allclose(weights, np.array([3.0, -1.0]) / np.sqrt(10), rtol=1e-5)


def test_it_turns_away_from_what_every_paper_shares() -> None:
    # Liking X, the profile is X itself; the ridge model also discounts the direction that
    # X shares with D, so a paper orthogonal to D now scores above D.
    model = fitted_on([X, D], ridge=1.0, min_labels=1)
    users = users_liking([X, D], [0])
    other = PaperBlock(np.array([7, 8]), np.array([[1.0, -1.0], D]), np.zeros(2))
    scores = model.score(users, other)[0]
    assert scores[0] > scores[1]


def test_below_min_labels_a_user_gets_the_content_profile() -> None:
    model = fitted_on([X, D], ridge=1.0, min_labels=2)
    users = users_liking([X, D], [0])
    np.testing.assert_allclose(model.user_vectors(users), ContentProfile().user_vectors(users))


def test_it_must_be_fitted_first() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        PerUserLinear().user_vectors(users_liking([X, D], [0]))


@pytest.mark.parametrize("config", [{"ridge": 0.0}, {"min_labels": 0}, {"half_life_days": -1.0}])
def test_bad_settings_are_refused(config: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PerUserLinear(**config)  # type: ignore[arg-type]


def test_unknown_state_keys_are_refused() -> None:
    arrays, config = fitted_on([X, D]).get_state()
    with pytest.raises(ValueError, match="unknown keys"):
        PerUserLinear.from_state(arrays, {**config, "surprise": 1})
    with pytest.raises(ValueError, match="missing"):
        PerUserLinear.from_state({}, config)
