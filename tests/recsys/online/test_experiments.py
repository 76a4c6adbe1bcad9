"""Stored experiments: one running at a time, stop, and each user's arm."""

from __future__ import annotations

import pytest

from recsys.db.session import Database
from recsys.online.assignment import HOLDOUT, ExperimentError, RankerConfig, Variant, assign
from recsys.online.experiments import (
    RankingDefaults,
    arms_for,
    create_experiment,
    get_experiment,
    running_experiment,
    stop_experiment,
)
from tests.conftest import NOW

USERS = list(range(1, 401))
VARIANTS = [Variant("control", 0.5), Variant("explore", 0.5, RankerConfig(explore_slots=2))]


def test_only_one_experiment_runs_at_a_time(db: Database) -> None:
    with db.session() as s:
        create_experiment(s, "first", VARIANTS, NOW)
        with pytest.raises(ExperimentError, match="'first' is running"):
            create_experiment(s, "second", VARIANTS, NOW)
        with pytest.raises(ExperimentError, match="already exists"):
            create_experiment(s, "first", VARIANTS, NOW)
        assert stop_experiment(s, "first", NOW)
        assert not stop_experiment(s, "first", NOW)
        create_experiment(s, "second", VARIANTS, NOW)
        running = running_experiment(s)
        assert running is not None and running.name == "second"
        with pytest.raises(ExperimentError, match="known: \\['first', 'second'\\]"):
            get_experiment(s, "third")


def test_users_get_their_hashed_arm_and_the_rest_the_defaults(db: Database) -> None:
    with db.session() as s:
        row = create_experiment(s, "e", VARIANTS[:1], NOW, salt="s")  # half the users
        arms = arms_for(s, USERS, RankingDefaults(explore_slots=1))
    expected = assign("s", USERS, [0.5])
    for arm, index in zip(arms, expected.tolist(), strict=True):
        if index == 0:
            assert (arm.experiment_id, arm.variant, arm.config) == (
                row.id,
                "control",
                RankerConfig(),
            )
        else:
            assert (arm.experiment_id, arm.variant) == (None, None)
            assert arm.config == RankerConfig(explore_slots=1)


def test_holdout_users_stay_out_of_experiments(db: Database) -> None:
    with db.session() as s:
        create_experiment(s, "e", [Variant("all", 1.0)], NOW)
        arms = arms_for(s, USERS, RankingDefaults(holdout_share=0.25, holdout_salt="h"))
    holdout = [a for a in arms if a.variant == HOLDOUT]
    assert all(a.config == RankerConfig(uniform=True) and a.experiment_id is None for a in holdout)
    assert {a.variant for a in arms} == {HOLDOUT, "all"}
    assert abs(len(holdout) - 100) < 4 * (400 * 0.25 * 0.75) ** 0.5
