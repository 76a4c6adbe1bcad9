"""Off-policy estimates from the database, on the synthetic world with its known click model.

The world is stored, trained, and two days of digests are ranked by the real scorer
(``rank_digests``) with exploration slots and a uniform holdout; clicks are simulated from
the known position-based click model (``examination(l) x click_probability``) and stored as
tracked-link events. The truth of each variant is computed independently of the code under
test: the real ``rank_users`` ranks every logged context with the variant's config, and the
expected clicks of that slate (its random positions averaged over their draw) are summed
with the known click model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.cli import app
from api.demo import load_world
from experiments import offpolicy as op
from experiments import offpolicy_logs as opl
from experiments import offpolicy_sim as sim
from experiments.logs import stream_logged_digests
from recsys.catalog.papers import ids_by_external_id
from recsys.db.models import Base, DigestItemRow, DigestRow, EventRow, UserRow
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import RankedDigest, rank_digests, rank_users
from recsys.online.assignment import RankerConfig
from recsys.online.experiments import Arm, RankingDefaults
from recsys.settings import Settings
from recsys.synth import World, click_probability, generate_world
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW

SIZE, SLOTS, HOLDOUT = 5, 2, 0.3
DAY2 = NOW + timedelta(days=1)
LOOKBACK = timedelta(days=7)
AS_OF = DAY2 + timedelta(days=30)  # every logged click window is closed
VARIANTS = {
    "topk": RankerConfig(),
    "shipped": RankerConfig(explore_slots=SLOTS),
    "bar": RankerConfig(min_score=0.3),
    "uniform": RankerConfig(uniform=True),
}
runner = CliRunner()


@dataclass
class Logged:
    db: Database
    data_dir: Path
    truth: dict[str, float]  # day 1's expected clicks per sent digest, per variant
    observed_day1: float


@pytest.fixture(scope="module")
def logged(migrated_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    _empty(migrated_db)
    yield build_logs(migrated_db, tmp_path_factory.mktemp("offpolicy"))
    _empty(migrated_db)


def build_logs(db: Database, data_dir: Path, n_users: int = 1500) -> Logged:
    """Store and train the world, then log two days of digests with their clicks."""
    settings = Settings(environment="test", data_dir=data_dir, secret_key="s")
    world = generate_world(n_users, 60, clicks_per_user=2, seed=3, now=NOW)
    rng = np.random.default_rng(11)
    with db.session() as s:
        users = load_world(s, world, NOW)
        papers = ids_by_external_id(s, [p.external_id or "" for p in world.papers])
        s.execute(update(UserRow).values(digest_size=SIZE))
        train(s, settings, NOW)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    rows = _Rows({u: i for i, u in enumerate(users)}, {p: i for i, p in enumerate(papers)})
    with db.session() as s:
        ids = _rank_day(s, model, NOW, RankingDefaults(SLOTS, HOLDOUT, "salt"))
        truth = _truths(s, model, world, rows, ids)
        observed = _send_and_click(s, world, rows, ids, NOW, rng)
    with db.session() as s:  # day 2: exploration only, no holdout
        ids = _rank_day(s, model, DAY2, RankingDefaults(SLOTS, 0.0, "salt"))
        _send_and_click(s, world, rows, ids, DAY2, rng)
    return Logged(db, data_dir, truth, observed)


@dataclass(frozen=True)
class _Rows:
    user: dict[int, int]  # user id -> world row
    paper: dict[int, int]  # paper id -> world row


def _empty(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def _rank_day(s: Session, model: Model, now: datetime, defaults: RankingDefaults) -> list[int]:
    planned = plan_due(s, now)
    ranked: list[int] = []
    for start in range(0, len(planned), 500):
        chunk = planned[start : start + 500]
        ranked += rank_digests(s, chunk, model, now, lookback=LOOKBACK, defaults=defaults)
    return ranked


def _truths(
    s: Session, model: Model, world: World, rows: _Rows, digest_ids: list[int]
) -> dict[str, float]:
    """Each variant's expected clicks per digest on these contexts, by the real ranker."""
    digests = s.scalars(select(DigestRow).where(DigestRow.id.in_(digest_ids))).all()
    users = [s.get(UserRow, d.user_id) for d in digests]
    since = {d.user_id: d.covers_from for d in digests}
    seeds = [d.id for d in digests]
    truth = {}
    for name, config in VARIANTS.items():
        ranking = rank_users(
            s, model, users, since, NOW, arms=[Arm(config)] * len(users), seeds=seeds
        )
        paper_ids = ranking.candidates.block.paper_ids
        values = [
            _expected_clicks(world, rows, user.id, paper_ids[d.slate.cols], d.slate.explored,
                             paper_ids[_drawn_from(d)])
            for user, d in zip(users, ranking.digests, strict=True)
        ]  # fmt: skip
        truth[name] = float(np.mean(values))
    return truth


def _drawn_from(digest: RankedDigest) -> NDArray[np.bool_]:
    """The candidates a random position draws from: the uniform holdout samples the whole
    pool; an exploration slot only the pool's papers above the arm's bar (a paper below the
    bar is never shown, issue 14), which ``rank_users`` reports as ``explorable``."""
    if digest.arm.config.uniform or digest.explorable is None:
        return digest.pool
    return digest.explorable


def _expected_clicks(
    world: World,
    rows: _Rows,
    user_id: int,
    shown: NDArray[np.int64],
    explored: NDArray[np.bool_],
    drawn_from: NDArray[np.int64],
) -> float:
    """A ranked position counts its paper; a random one the mean over the papers it is drawn
    from (those minus the ranked head: ``recsys.digests.exploration``)."""
    user = np.array([rows.user[user_id]])
    head = shown[~explored]
    rest = np.setdiff1d(drawn_from, head)
    exam = sim.examination(len(shown))
    attraction = click_probability(
        world, user, np.array([rows.paper[int(p)] for p in head], dtype=np.int64)
    )
    drawn = click_probability(
        world, user, np.array([rows.paper[int(p)] for p in rest], dtype=np.int64)
    )
    value = float((exam[~explored] * attraction).sum())
    return value + float(exam[explored].sum() * (drawn.mean() if len(rest) else 0.0))


def _send_and_click(
    s: Session, world: World, rows: _Rows, digest_ids: list[int], now: datetime,
    rng: np.random.Generator,
) -> float:  # fmt: skip
    """Mark the digests sent and click each shown paper with the known probability."""
    sent_at = now + timedelta(minutes=10)
    s.execute(
        update(DigestRow).where(DigestRow.id.in_(digest_ids)).values(status="sent", sent_at=sent_at)
    )
    items = s.execute(
        select(
            DigestItemRow.digest_id,
            DigestItemRow.position,
            DigestItemRow.paper_id,
            DigestRow.user_id,
        )
        .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
        .where(DigestItemRow.digest_id.in_(digest_ids))
        .order_by(DigestItemRow.digest_id, DigestItemRow.position)
    ).all()
    u = np.array([rows.user[i.user_id] for i in items])
    p = np.array([rows.paper[i.paper_id] for i in items])
    exam = sim.examination(50)[[i.position for i in items]]
    clicked = rng.random(len(items)) < exam * click_probability(world, u, p)
    s.add_all(
        EventRow(user_id=i.user_id, paper_id=i.paper_id, kind="click", digest_id=i.digest_id,
                 created_at=sent_at + timedelta(hours=1))
        for i, c in zip(items, clicked, strict=True) if c
    )  # fmt: skip
    return float(clicked.sum() / len(digest_ids))


def _offpolicy(
    logged: Logged, *args: str, at: datetime = AS_OF
) -> tuple[int, dict[str, object], str]:
    env = {"PAPERBOY_DATABASE_URL": logged.db.url, "PAPERBOY_DATA_DIR": str(logged.data_dir)}
    # A fixed instant, not today's date (the default closes both days' click windows).
    as_of = ["--as-of", at.strftime("%Y-%m-%dT%H:%M:%S")]
    result = runner.invoke(app, ["experiment", "offpolicy", *args, *as_of, "--json"], env=env)
    out = result.stdout
    return result.exit_code, json.loads(out) if out.strip() else {}, result.stderr or ""


def _variant_args() -> list[str]:
    return [
        arg
        for name, config in VARIANTS.items()
        for arg in ("--variant", f"{name}={json.dumps(config.as_dict())}")
    ]


def test_the_truths_differ_as_the_policies_should(logged: Logged) -> None:
    t = logged.truth
    assert t["topk"] > t["shipped"] > t["uniform"]  # exploring and random cost clicks
    assert t["topk"] > t["bar"]  # a high bar sends fewer papers
    # The logging policy shipped its config to 70% and uniform digests to 30% of users.
    assert logged.observed_day1 == pytest.approx(0.7 * t["shipped"] + 0.3 * t["uniform"], rel=0.15)


# 22 intervals are checked at once (4 policies x IPS/SNIPS/DR, less SNIPS for the bar, x
# normal and bootstrap): at 95% each, one misses by chance about every other run (it did,
# on PostgreSQL, where the fits' thread scheduling moves the last digits). Each interval is
# widened to Bonferroni's family-wise 95% before the check, so a miss means a biased
# estimator, not bad luck.
_FAMILY = 22
_WIDEN = NormalDist().inv_cdf(1 - 0.05 / (2 * _FAMILY)) / NormalDist().inv_cdf(0.975)


def _covers(low: float, value: float, high: float, truth: float) -> bool:
    return value - _WIDEN * (value - low) <= truth <= value + _WIDEN * (high - value)


def test_estimates_from_the_database_cover_the_truth_and_order_the_policies(logged: Logged) -> None:
    code, report, err = _offpolicy(logged, *_variant_args(), "--until", DAY2.date().isoformat())
    assert code == 0, err
    variants = report["variants"]
    assert isinstance(variants, dict)
    # The bar leaves positions empty that the logs always filled: no SNIPS for it.
    assert set(variants["bar"]["estimates"]) == {"ips", "dr", "pi"}
    for estimator in ("ips", "snips", "dr"):
        values = {}
        for name, truth in logged.truth.items():
            if name == "bar" and estimator == "snips":
                continue
            estimate = variants[name]["estimates"][estimator]
            for low, high in (("ci_low", "ci_high"), ("boot_low", "boot_high")):
                assert _covers(estimate[low], estimate["value"], estimate[high], truth), (
                    name,
                    estimator,
                    estimate,
                    truth,
                )
            values[name] = estimate["value"]
        assert values["topk"] > values["shipped"] > values["uniform"], (estimator, values)
        if estimator != "snips":
            assert values["shipped"] > values["bar"] > values["uniform"], (estimator, values)
    assert report["digests"] == pytest.approx(1500, abs=100)
    assert report["other_model_share"] == 0.0
    # The re-ranker gives back every logged digest's own ranking: it ranks as the scorer did.
    assert report["reproduced_share"] == 1.0


def test_a_ranker_that_changes_the_head_is_refused_without_a_holdout(logged: Logged) -> None:
    # Day 2 was logged with exploration slots only: the first 3 positions are deterministic.
    code, report, err = _offpolicy(
        logged, "--variant", "shipped={\"explore_slots\": 2}",
        "--variant", "diverse={\"diversity\": 0.3}", "--since", DAY2.date().isoformat(),
    )  # fmt: skip
    assert code == 3
    assert "variant 'diverse'" in err and "PAPERBOY_HOLDOUT_SHARE" in err
    variants = report["variants"]
    assert isinstance(variants, dict)
    assert variants["diverse"]["unsupported_share"] > opl.MAX_UNSUPPORTED
    assert variants["shipped"]["refused"] is None  # what was logged is always supported
    assert report["logging"]["arms"] == {'default {"explore_slots": 2}': 1.0}  # type: ignore[index]


def test_bad_variants_and_an_empty_period_exit_2_saying_why(logged: Logged) -> None:
    code, _, err = _offpolicy(logged, "--variant", 'x={"explore_slots": -1}')
    assert code == 2 and "explore_slots" in err
    code, _, err = _offpolicy(logged, "--variant", "x={}", "--since", "2030-01-01")
    assert code == 2 and "no sent digest" in err


def test_as_of_reads_only_the_digests_whose_click_window_had_closed_then(
    logged: Logged,
) -> None:
    variant = ("--variant", 'shipped={"explore_slots": 2}')
    # Day 1 was sent at NOW + 10 min and day 2 a day later; clicks count for 7 days.
    code, report, err = _offpolicy(logged, *variant, at=NOW + timedelta(days=7, hours=1))
    assert code == 0, err
    assert report["digests"] == pytest.approx(1500, abs=100)  # day 1 only
    assert 'holdout {"uniform": true}' in report["logging"]["arms"]  # type: ignore[operator]
    code, _, err = _offpolicy(logged, *variant, at=NOW + timedelta(days=7))
    assert code == 2 and "no sent digest" in err  # no click window had closed yet


def test_the_stream_reads_the_same_digests_whatever_the_chunk_size(logged: Logged) -> None:
    with logged.db.session() as s:
        now, window = DAY2 + timedelta(days=30), timedelta(days=7)
        small = [
            d for c in stream_logged_digests(s, now=now, window=window, chunk_size=7) for d in c
        ]
        whole = [d for c in stream_logged_digests(s, now=now, window=window) for d in c]
        clicks = s.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.digest_id.is_not(None))
        )
    assert [d.digest_id for d in small] == [d.digest_id for d in whole]
    assert sum(int(d.clicked.sum()) for d in small) == clicks
    first = small[0]
    assert set(first.shown) <= set(first.pool) and len(first.shown) == SIZE
    assert np.all(np.diff(first.pool) > 0)
    # Every logged propensity is what the logged arm's marginals say it is.
    for d in small[:200]:
        own = opl.logged_marginals(d, SIZE)
        at = np.searchsorted(d.pool, d.shown)
        # (a thin day's digest is shorter: exploration stays above the bar too)
        np.testing.assert_allclose(own[np.arange(len(at)), at], d.propensity)


def test_export_logs_writes_one_json_line_per_digest(logged: Logged, tmp_path: Path) -> None:
    env = {"PAPERBOY_DATABASE_URL": logged.db.url, "PAPERBOY_DATA_DIR": str(logged.data_dir)}
    out = tmp_path / "logs"
    result = runner.invoke(
        app, ["experiment", "export-logs", "--out", str(out), "--since", DAY2.date().isoformat(),
              "--as-of", AS_OF.strftime("%Y-%m-%dT%H:%M:%S"), "--json"], env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = json.loads(result.stdout)
    lines = (out / "digests.jsonl").read_text().splitlines()
    assert manifest["digests"] == len(lines) > 0
    records = [json.loads(line) for line in lines]
    assert {r["sent_at"][:10] for r in records} == {DAY2.date().isoformat()}
    assert sum(sum(r["clicked"]) for r in records) == manifest["clicked"]
    record = records[0]
    assert set(record) == {
        "schema", "digest_id", "user_id", "digest_size", "ranked_at", "sent_at", "model_version",
        "experiment_id", "variant", "ranker_config", "pool", "shown", "propensity", "explored",
        "clicked",
    }  # fmt: skip
    assert len(record["shown"]) == len(record["propensity"]) == len(record["clicked"]) == SIZE
    written = json.loads((out / "manifest.json").read_text())
    assert written == {k: v for k, v in manifest.items() if k != "out"}
    # The generic files: training strictly before the first exported digest, test = its clicks.
    train = (out / "train.csv").read_text().splitlines()
    test = (out / "test.csv").read_text().splitlines()
    assert len(test) - 1 == manifest["clicked"]
    assert max(line.split(",")[2] for line in train[1:]) < manifest["train_before"]


def test_the_offline_engine_runs_on_an_exported_folder(logged: Logged, tmp_path: Path) -> None:
    env = {"PAPERBOY_DATABASE_URL": logged.db.url, "PAPERBOY_DATA_DIR": str(logged.data_dir)}
    at = AS_OF.strftime("%Y-%m-%dT%H:%M:%S")
    result = runner.invoke(
        app, ["experiment", "export-logs", "--out", str(tmp_path / "logs"), "--as-of", at], env=env
    )
    assert result.exit_code == 0, result.stderr
    config = tmp_path / "logs.toml"
    config.write_text(
        'name = "logged"\nseeds = [0]\ncontrol = "content"\nmetrics = ["recall@5", "mrr"]\n'
        '[dataset]\nkind = "logs"\npath = "logs"\nsplit = "all"\n'
        '[[variants]]\nname = "content"\ncomponents = ["content"]\n'
        '[[variants]]\nname = "popularity"\ncomponents = ["popularity"]\n'
    )
    result = runner.invoke(
        app, ["experiment", "run", str(config), "--out", str(tmp_path / "run"), "--json"], env=env
    )
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    # Clicks follow topics: the content profile finds the clicked papers better than popularity.
    content, popularity = (
        metrics["recall@5"]["variants"][v]["mean"] for v in ("content", "popularity")
    )
    assert content > popularity > 0
    (tmp_path / "logs" / "train.csv").unlink()
    result = runner.invoke(app, ["experiment", "run", str(config)], env=env)
    assert result.exit_code == 2 and "train.csv" in result.stderr


def test_position_marginals_of_each_kind_of_arm_by_hand() -> None:
    ranked = np.array([3, 1, 4])  # pool of 5, digest of 3, one exploration slot
    m = opl.ranked_marginals(ranked, 5, 3, RankerConfig(explore_slots=1), length=4)
    assert m[0].tolist() == [0, 0, 0, 1, 0, 0] and m[1].tolist() == [0, 1, 0, 0, 0, 0]
    # The last slot is drawn from the pool minus the head {3, 1}: 0, 2, 4 with 1/3 each.
    np.testing.assert_allclose(m[2], [1 / 3, 0, 1 / 3, 0, 1 / 3, 0])
    assert m[3].tolist() == [0, 0, 0, 0, 0, 1]  # past the digest: nothing shown
    u = opl.ranked_marginals(ranked, 5, 3, RankerConfig(uniform=True), length=3)
    np.testing.assert_allclose(u, np.tile([0.2] * 5 + [0.0], (3, 1)))
    # Nothing cleared the bar: the digest is empty even with exploration (a thin day).
    e = opl.ranked_marginals(np.array([], int), 5, 3, RankerConfig(explore_slots=1), length=3)
    assert e[:, -1].tolist() == [1, 1, 1]


def test_exploration_marginals_stay_above_the_bar_by_hand() -> None:
    ranked, config = np.array([3, 1, 4]), RankerConfig(explore_slots=1)
    # Papers 0 and 2 are below the bar: the explored slot draws from {1, 3, 4} minus the head.
    m = opl.ranked_marginals(ranked, 5, 3, config, length=3, explorable=np.array([1, 3, 4]))
    assert m[2].tolist() == [0, 0, 0, 0, 1, 0]
    # Only the head clears it: the slot stays empty, as a top-k digest's would.
    e = opl.ranked_marginals(ranked, 5, 3, config, length=3, explorable=np.array([1, 3]))
    assert e[2].tolist() == [0, 0, 0, 0, 0, 1]


def test_support_problems_name_the_logging_that_would_answer() -> None:
    def estimate(ess: float) -> op.Estimate:
        return op.Estimate("ips", 0.5, 0.4, 0.6, 0.05, 100, ess, 3.0, 1.0, 0.0)

    assert opl.support_problem(estimate(500), 0.0, 2, 5) is None
    few = opl.support_problem(estimate(12.5), 0.0, 2, 5)
    assert few is not None and "effective sample size 12.5 < 30" in few
    unsupported = opl.support_problem(estimate(500), 0.2, 2, 5)
    assert unsupported is not None and "20.0%" in unsupported and "3 of 5" in unsupported
    assert "PAPERBOY_HOLDOUT_SHARE" in unsupported and "PAPERBOY_EXPLORE_SLOTS=5" in unsupported
