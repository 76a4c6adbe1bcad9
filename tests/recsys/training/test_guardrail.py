"""The training guard-rail on the synthetic world with logged digests and known clicks.

The logs are those of ``tests/experiments/test_offpolicy_logs.py``: a trained world, two days
of digests ranked by the real scorer (two exploration slots, and a 30% uniform holdout on the
first day, which lets the logs support any ranker), clicks drawn from the known click model.
Each test trains (or judges) a new candidate against the model that ranked them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Self

import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from api.cli import app
from recsys.db.models import Base
from recsys.db.session import Database
from recsys.progress import Progress
from recsys.recommender import Component, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.popularity import PopularityPrior
from recsys.settings import Settings
from recsys.training import guardrail, store
from recsys.training.model import load_active_model
from recsys.training.nightly import train
from recsys.training.versions import describe_versions
from tests.conftest import NOW
from tests.experiments.test_offpolicy_logs import DAY2, SLOTS, Logged, build_logs

LATER = DAY2 + timedelta(days=8)  # both logged days' click windows (7 days) have closed
runner = CliRunner()


@pytest.fixture(scope="module")
def logged(migrated_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    _empty(migrated_db)
    yield build_logs(migrated_db, tmp_path_factory.mktemp("guardrail"))
    _empty(migrated_db)


@pytest.fixture()
def settings(logged: Logged) -> Settings:
    return _settings(logged)


def _settings(logged: Logged, **overrides: Any) -> Settings:
    return Settings(
        environment="test", data_dir=logged.data_dir, secret_key="s", explore_slots=SLOTS,
        database_url=logged.db.url, **overrides,
    )  # fmt: skip


@pytest.fixture()
def restore_active(logged: Logged) -> Iterator[None]:
    """Each test starts from the model that ranked the logs, and leaves it active."""
    with logged.db.session() as s:
        first = store.list_versions(s)[0]
        store.activate(s, first, NOW)
    yield
    with logged.db.session() as s:
        store.activate(s, first, NOW)


def _empty(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def _popularity_only(
    snapshot: TrainingSnapshot, progress: Progress
) -> tuple[Component, dict[str, Any]]:
    """A deliberately poor recommender: one global popularity ranking for every reader."""
    return PopularityPrior(n_topics=1).fit(snapshot), {"source": "test: popularity only"}


def _active(logged: Logged) -> str | None:
    with logged.db.session() as s:
        return store.active_version(s)


@pytest.mark.usefixtures("restore_active")
def test_a_popularity_only_candidate_is_refused_and_kept_inactive_with_its_reason(
    logged: Logged, settings: Settings
) -> None:
    before = _active(logged)
    with logged.db.session() as s:
        report = train(s, settings, LATER, fit=_popularity_only)
    assert not report.activated
    assert _active(logged) == before  # the shipped model keeps serving
    verdict = report.guardrail
    assert verdict["passed"] is False and verdict["metric"] in ("snips", "dr")
    # A ranking blind to topics loses clicks against one that follows them: well past 5%.
    assert verdict["candidate"] < (1 - settings.guardrail_tolerance) * verdict["active"]
    assert "below the active model's" in report.reason
    with logged.db.session() as s:
        manifest = store.read_manifest(s, report.version)
        listed = {v["version"]: v for v in describe_versions(s)}
    assert manifest["guardrail"] == verdict
    assert listed[report.version]["active"] is False
    assert listed[report.version]["guardrail"]["reason"] == report.reason


@pytest.mark.usefixtures("restore_active")
def test_a_retrained_hybrid_passes_and_is_activated(logged: Logged, settings: Settings) -> None:
    with logged.db.session() as s:
        report = train(s, settings, LATER)
    assert report.activated, report.reason
    assert _active(logged) == report.version
    verdict = report.guardrail
    assert verdict["candidate"] >= (1 - settings.guardrail_tolerance) * verdict["active"]
    assert verdict["digests"] > 2000  # both logged days of 1,500 readers are judged


@pytest.mark.usefixtures("restore_active")
def test_too_few_logged_digests_pass_saying_so(logged: Logged) -> None:
    settings = _settings(logged, guardrail_min_digests=100_000)
    with logged.db.session() as s:
        report = train(s, settings, LATER, fit=_popularity_only)
    assert report.activated  # even a poor model: nothing can show it is worse
    assert report.reason.startswith("not enough logs to judge")
    assert "< PAPERBOY_GUARDRAIL_MIN_DIGESTS=100000" in report.reason
    assert report.guardrail["candidate"] is None


def test_a_window_before_any_log_cannot_judge(logged: Logged, settings: Settings) -> None:
    with logged.db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    with logged.db.session() as s:
        verdict = guardrail.judge(s, settings, model, model, DAY2, _sample(model))
    assert verdict.passed and verdict.digests == 0
    assert verdict.reason.startswith("not enough logs to judge: 0 logged digests")


@pytest.mark.usefixtures("restore_active")
def test_the_guardrail_and_experiment_offpolicy_report_the_same_numbers(
    logged: Logged, settings: Settings
) -> None:
    with logged.db.session() as s:
        report = train(s, settings, LATER, fit=_popularity_only)
    verdict = report.guardrail
    active_value = _offpolicy_value(logged, verdict)
    assert active_value == verdict["active"]
    # The operator overrides the guard-rail; the CLI now evaluates the refused candidate.
    result = _cli(logged, "models", "activate", report.version)
    assert result.exit_code == 0 and "guard-rail overridden" in result.stderr
    assert _offpolicy_value(logged, verdict) == verdict["candidate"]


@pytest.mark.usefixtures("restore_active")
def test_models_list_shows_each_versions_verdict(logged: Logged, settings: Settings) -> None:
    with logged.db.session() as s:
        refused = train(s, settings, LATER, fit=_popularity_only)
    listed = json.loads(_cli(logged, "models", "list", "--json").stdout)
    mine = next(v for v in listed if v["version"] == refused.version)
    assert mine["guardrail"]["passed"] is False and mine["active"] is False
    text = _cli(logged, "models", "list").stdout
    assert f"REFUSED: {refused.reason}" in text.replace("\n    ", " ")
    assert "passed: first model: none is active" in text


class _NaNScores(Component):
    """Scores like a model whose factors diverged."""

    name: ClassVar[str] = "nan-test"

    def user_vectors(self, users: UserBlock) -> NDArray[np.float32]:
        return np.full((users.n_users, 1), np.nan, dtype=np.float32)

    def paper_vectors(self, papers: PaperBlock) -> NDArray[np.float32]:
        return np.ones((len(papers.paper_ids), 1), dtype=np.float32)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        return {}, {}

    @classmethod
    def from_state(cls, arrays: Mapping[str, NDArray[Any]], config: Mapping[str, Any]) -> Self:
        return cls()


def test_a_model_with_nan_scores_fails_the_sanity_check_even_as_the_first(
    logged: Logged, settings: Settings
) -> None:
    with logged.db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    users, papers = _sample(model)
    assert guardrail.sanity_problem(model, users, papers) is None
    model.component = _NaNScores()
    problem = guardrail.sanity_problem(model, users, papers)
    assert problem is not None and "NaN or infinite" in problem
    with logged.db.session() as s:
        verdict = guardrail.judge(s, settings, model, None, LATER, (users, papers))
    assert not verdict.passed and verdict.reason.startswith("sanity check failed")


def test_the_comparison_by_hand() -> None:
    def result(snips: float | None, dr: float, refused: str | None = None) -> dict[str, Any]:
        estimates = {"dr": {"value": dr}} | ({"snips": {"value": snips}} if snips else {})
        return {"estimates": estimates, "refused": refused}

    ok = guardrail.compare(result(0.96, 0.5), result(1.0, 0.9), 0.05)
    assert ok["passed"] and ok["metric"] == "snips" and ok["candidate"] == 0.96
    bad = guardrail.compare(result(0.94, 0.5), result(1.0, 0.9), 0.05)
    assert not bad["passed"] and "6.0% below" in bad["reason"]
    # SNIPS missing on one side: both are compared by DR.
    dr = guardrail.compare(result(None, 0.5), result(1.0, 0.9), 0.05)
    assert dr["metric"] == "dr" and not dr["passed"]
    unsupported = guardrail.compare(result(0.1, 0.1, "ESS too small"), result(1.0, 0.9), 0.05)
    assert unsupported["passed"] and "ESS too small" in unsupported["reason"]


def _sample(model: Any) -> tuple[UserBlock, PaperBlock]:
    ids = np.sort(np.array(model.store.ids(), dtype=np.int64))[:200]
    vectors = model.store.get(ids)
    papers = PaperBlock(paper_ids=ids, embeddings=vectors, age_days=np.zeros(len(ids), np.float32))
    return UserBlock.cold(np.arange(1, 11), vectors.shape[1]), papers


def _cli(logged: Logged, *args: str) -> Any:
    env = {"PAPERBOY_DATABASE_URL": logged.db.url, "PAPERBOY_DATA_DIR": str(logged.data_dir)}
    return runner.invoke(app, list(args), env=env)


def _offpolicy_value(logged: Logged, verdict: dict[str, Any]) -> float:
    """What `paperboy experiment offpolicy` says of the verdict's variant, window and metric."""
    since, until = (verdict[k][:19] for k in ("since", "until"))  # naive UTC, as typer parses
    variant = f"shipped={json.dumps(verdict['variant'])}"
    # --as-of the instant the guard-rail judged at: the same digests, whatever today's date.
    result = _cli(logged, "experiment", "offpolicy", "--variant", variant, "--since", since,
                  "--until", until, "--as-of", f"{LATER:%Y-%m-%dT%H:%M:%S}", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    value: float = json.loads(result.stdout)["variants"]["shipped"]["estimates"][verdict["metric"]][
        "value"
    ]
    return value
