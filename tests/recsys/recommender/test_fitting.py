"""Fitting the shipped hybrid: the time-based hold-out, validated weights, the fallback."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recsys.recommender import ContentProfile, TrainingSnapshot
from recsys.recommender.fitting import fit_hybrid, hold_out_latest, latest_events
from recsys.recommender.hybrid import Hybrid
from recsys.recommender.popularity import PopularityPrior
from tests.recsys.recommender.test_als import crowded_world


def test_each_user_gives_up_their_latest_positive_events() -> None:
    # user 0: four positives aged 5, 1, 3, 2 days -> half of them, the two newest, held out;
    # user 1: one positive and one dislike -> nothing can be held out.
    event_user = np.array([0, 0, 0, 0, 1, 1])
    positive = np.array([True, True, True, True, True, False])
    age = np.array([5.0, 1.0, 3.0, 2.0, 0.5, 0.1])
    held = latest_events(event_user, positive, age, 2, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(held, [False, True, False, True, False, False])


def test_the_hold_out_moves_events_from_training_to_relevant() -> None:
    world = crowded_world()
    training, relevant = hold_out_latest(world.snapshot, np.random.default_rng(0))
    users = world.snapshot.users
    assert len(training.users.event_user) + relevant.nnz == len(users.event_user)
    # no held-out pair is still in training
    train = training.interactions(positive_only=False).toarray() != 0
    assert not (train & (relevant.toarray() != 0)).any()


def test_weights_are_learned_on_the_hold_out_when_users_have_two_clicks() -> None:
    world = crowded_world()
    fitted = fit_hybrid(world.snapshot, lambda: [ContentProfile(), PopularityPrior(n_topics=1)])
    assert fitted.weight_source == "validation"
    assert fitted.n_validation_users > 0
    assert isinstance(fitted.hybrid, Hybrid) and fitted.hybrid.weights[0] > 0
    scores = fitted.hybrid.score(world.users, world.papers)
    assert scores.shape == (world.users.n_users, world.papers.n_papers)


def test_with_one_click_per_user_the_spread_fallback_is_used() -> None:
    world = crowded_world()
    users = world.snapshot.users
    first = np.unique(users.event_user, return_index=True)[1]
    single = replace(
        users,
        event_user=users.event_user[first],
        event_item=users.event_item[first],
        event_weight=np.ones(len(first), np.float32),
        event_age_days=users.event_age_days[first],
    )
    snapshot = TrainingSnapshot(single, world.snapshot.papers)
    fitted = fit_hybrid(snapshot, lambda: [ContentProfile(), PopularityPrior(n_topics=1)])
    assert fitted.weight_source.startswith("fallback")
    assert fitted.n_validation_users == 0
    assert (fitted.hybrid.weights > 0).all()
