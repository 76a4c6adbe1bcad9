"""An interleaving experiment through the database: create, rank, click, report."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from experiments.offpolicy_logs import offpolicy_report
from recsys.db.models import DigestItemRow, DigestRow, EventRow, UserRow
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.online.analysis import online_report, wilson_interval
from recsys.online.assignment import ExperimentError, RankerConfig, Variant
from recsys.online.experiments import create_experiment, stop_experiment
from recsys.online.interleaved import INTERLEAVED, create_interleave, interleave_report
from recsys.online.interleaving import draft_rng, position_marginals, team_draft
from recsys.training.model import Model
from tests.conftest import NOW

LOOKBACK = timedelta(days=7)
WINDOW = timedelta(days=7)
SIZE = 4
PLAIN = RankerConfig()
# Diversity 0: after the best paper, the paper least like it (here: the other topic).
DIVERSE = RankerConfig(diversity=0.0, min_score=-1.01)


def _rank_everyone(db: Database, model: Model) -> dict[int, tuple[int, list[int], list[str]]]:
    """Plan and rank every user afresh; user id -> (digest id, paper ids, teams)."""
    with db.session() as s:
        s.execute(DigestItemRow.__table__.delete())
        s.execute(DigestRow.__table__.delete())
        s.execute(
            UserRow.__table__.update().values(
                next_digest_at=NOW - timedelta(hours=1), digest_size=SIZE
            )
        )
    with db.session() as s:
        rank_digests(s, plan_due(s, NOW), model, NOW, lookback=LOOKBACK)
    with db.session() as s:
        rows = s.execute(
            select(DigestRow.user_id, DigestRow.id, DigestItemRow.paper_id, DigestItemRow.team)
            .join(DigestItemRow, DigestItemRow.digest_id == DigestRow.id)
            .order_by(DigestRow.user_id, DigestItemRow.position)
        ).all()
    out: dict[int, tuple[int, list[int], list[str]]] = {}
    for user_id, digest_id, paper_id, team in rows:
        out.setdefault(user_id, (digest_id, [], []))
        out[user_id][1].append(paper_id)
        out[user_id][2].append(team)
    return out


def _ranked_by(db: Database, model: Model, config: RankerConfig, name: str) -> dict[int, list[int]]:
    """Each user's digest under ``config`` alone (a one-arm split, then stopped)."""
    with db.session() as s:
        create_experiment(s, name, [Variant("only", 1.0, config)], NOW)
    ranked = _rank_everyone(db, model)
    with db.session() as s:
        stop_experiment(s, name, NOW)
    return {user: papers for user, (_, papers, _) in ranked.items()}


def test_each_digest_is_the_team_draft_of_both_rankers_with_teams_and_propensities(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    by_a = _ranked_by(db, model, PLAIN, "only-a")
    by_b = _ranked_by(db, model, DIVERSE, "only-b")
    assert by_a[ids["ada"]] != by_b[ids["ada"]]  # the rankers disagree, so the draft matters
    with db.session() as s:
        experiment = create_interleave(s, "tdi", PLAIN, DIVERSE, NOW, salt="fixed")
        salt, experiment_id = experiment.salt, experiment.id

    ranked = _rank_everyone(db, model)

    assert set(ranked) == {ids["ada"], ids["ben"], ids["cy"]}
    for user, (digest_id, papers, teams) in ranked.items():
        expected = team_draft(by_a[user], by_b[user], SIZE, draft_rng(salt, digest_id))
        assert papers == expected[0].tolist()
        assert teams == expected[1].tolist()
        assert abs(teams.count("a") - teams.count("b")) <= 1
    with db.session() as s:
        digest = s.scalars(select(DigestRow).where(DigestRow.user_id == ids["ada"])).one()
        items = s.scalars(
            select(DigestItemRow)
            .where(DigestItemRow.digest_id == digest.id)
            .order_by(DigestItemRow.position)
        ).all()
    assert (digest.experiment_id, digest.variant) == (experiment_id, INTERLEAVED)
    assert digest.ranker_config == {"interleave": {"a": {}, "b": DIVERSE.as_dict()}}
    ada = ids["ada"]
    marginals = position_marginals(by_a[ada], by_b[ada], np.array(ranked[ada][1]))
    assert [i.propensity for i in items] == pytest.approx(marginals.tolist())
    assert not any(i.explored for i in items)


def test_the_report_credits_each_clicked_digest_to_the_team_that_placed_the_clicks(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        create_interleave(s, "tdi", PLAIN, DIVERSE, NOW, salt="fixed")
    ranked = _rank_everyone(db, model)
    sent = NOW + timedelta(hours=1)
    with db.session() as s:
        s.execute(DigestRow.__table__.update().values(status="sent", sent_at=sent))

    def clicks(user: str, team: str, n: int) -> list[tuple[int, int, int]]:
        digest_id, papers, teams = ranked[ids[user]]
        mine = [p for p, t in zip(papers, teams, strict=True) if t == team][:n]
        assert len(mine) == n
        return [(ids[user], p, digest_id) for p in mine]

    # Ada: one click on A's paper (A wins). Ben: two on B's (B wins). Cy: one each (tie).
    chosen = clicks("ada", "a", 1) + clicks("ben", "b", 2) + clicks("cy", "a", 1)
    chosen += clicks("cy", "b", 1)
    with db.session() as s:
        for user, paper, digest_id in chosen:
            s.add(EventRow(user_id=user, paper_id=paper, kind="click", digest_id=digest_id,
                           created_at=sent + timedelta(hours=2)))  # fmt: skip
        # A link scanner's click on Ada's B paper counts for nothing.
        (_, paper, digest_id) = clicks("ada", "b", 1)[0]
        s.add(EventRow(user_id=ids["ada"], paper_id=paper, kind="click", digest_id=digest_id,
                       created_at=sent + timedelta(hours=2), suspect=True))  # fmt: skip

    with db.session() as s:
        early = interleave_report(s, "tdi", sent + timedelta(days=1), WINDOW)
        report = interleave_report(s, "tdi", sent + WINDOW, WINDOW)

    assert (early["pending"], early["analysed"], early["clicked"]) == (3, 0, 0)
    assert (report["digests"], report["analysed"], report["clicked"]) == (3, 3, 3)
    assert (report["wins_a"], report["wins_b"], report["ties"]) == (1, 1, 1)
    assert (report["clicks_a"], report["clicks_b"]) == (2, 3)
    assert report["preference_a"] == 0.5
    assert report["preference_a_wilson"] == wilson_interval(1, 2)
    assert report["sign_test_p"] == pytest.approx(1.0)


def test_a_split_experiment_is_not_read_as_an_interleaving_one(db: Database) -> None:
    with db.session() as s:
        create_experiment(s, "ab", [Variant("a", 1.0)], NOW)
        with pytest.raises(ExperimentError, match="split experiment: read it with online-report"):
            interleave_report(s, "ab", NOW, WINDOW)


def test_sampling_configs_and_bad_shares_are_refused(db: Database) -> None:
    with db.session() as s:
        with pytest.raises(ExperimentError, match="--b: uniform and explore_slots"):
            create_interleave(s, "x", PLAIN, RankerConfig(explore_slots=2), NOW)
        with pytest.raises(ExperimentError, match="share: 0 must be"):
            create_interleave(s, "x", PLAIN, DIVERSE, NOW, share=0)


def test_off_policy_estimates_refuse_interleaved_logs_by_name_not_by_traceback(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        create_interleave(s, "tdi", PLAIN, DIVERSE, NOW, salt="fixed")
    _rank_everyone(db, model)
    with db.session() as s:
        s.execute(DigestRow.__table__.update().values(status="sent", sent_at=NOW))
    with (
        db.session() as s,
        pytest.raises(ExperimentError, match=r"unknown key\(s\) \['interleave'\]"),
    ):
        offpolicy_report(s, model, {"topk": PLAIN}, now=NOW + 2 * WINDOW, window=WINDOW)


def test_the_split_report_sends_an_interleaved_experiment_to_its_own_report(
    db: Database,
) -> None:
    with db.session() as s:
        create_interleave(s, "tdi", PLAIN, DIVERSE, NOW, salt="fixed")
    with db.session() as s, pytest.raises(ExperimentError, match="interleave-report --name tdi"):
        online_report(s, "tdi", NOW, WINDOW)
