"""Running experiments: the temporal replay, full-ranking metrics and a run through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from experiments.cli import experiment_app
from experiments.config import load_config
from experiments.runner import _Block, load_folds, temporal_folds
from recsys.recommender.ranking import top_k
from tests.conftest import shared_data

TINY = """
name = "tiny"
seeds = [0]
control = "content"
metrics = ["recall@10", "ndcg@10", "mrr", "auc", "hit_rate@5", "coverage@10",
           "diversity@10", "novelty@10"]
[dataset]
kind = "synthetic"
split = "temporal"
days = 2
[dataset.world]
n_users = 150
n_papers = 600
clicks_per_user = 15
[[variants]]
name = "content"
components = ["content"]
[[variants]]
name = "blend"
components = ["content", "popularity"]
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny experiment, run once through the CLI for every test below."""
    folder = tmp_path_factory.mktemp("experiment")
    config = folder / "tiny.toml"
    config.write_text(TINY)
    out = folder / "out"
    result = CliRunner().invoke(experiment_app, ["run", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["out_dir"] == str(out) and printed["name"] == "tiny"
    return out


def document(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def test_a_run_writes_the_record_and_both_views(run_dir: Path) -> None:
    doc = document(run_dir)
    assert {"config", "dataset", "users", "metrics", "per_user", "comparisons", "folds"} <= set(doc)
    assert [f["label"] for f in doc["folds"]] == ["2024-05-30", "2024-05-31"]
    assert set(doc["per_user"]) == set(doc["config"]["metrics"]) - {"coverage@10"}
    assert {(c["metric"], c["variant"]) for c in doc["comparisons"]} == {
        (metric, "blend") for metric in doc["per_user"]
    }
    summary = (run_dir / "summary.md").read_text()
    assert "## Who wins" in summary and "(best)" in summary
    page = (run_dir / "report.html").read_text()
    assert page.count("<svg") == len(doc["config"]["metrics"]) * 2 + 1  # + trade-off


def test_reported_numbers_agree_with_the_stored_per_user_vectors(run_dir: Path) -> None:
    doc = document(run_dir)
    n_users = len(doc["users"])
    assert sum(f["n_users"] for f in doc["folds"]) >= n_users > 0
    for metric, by_variant in doc["per_user"].items():
        for variant, values in by_variant.items():
            assert len(values) == n_users
            entry = doc["metrics"][metric]["variants"][variant]
            assert entry["mean"] == pytest.approx(np.mean(values), abs=1e-12)
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
    for row in doc["comparisons"]:
        values = doc["per_user"][row["metric"]]
        diff = np.mean(values[row["variant"]]) - np.mean(values["content"])
        assert row["diff"] == pytest.approx(diff, abs=1e-12)
        assert row["ci_low"] <= row["diff"] <= row["ci_high"] and row["p"] <= row["p_holm"]


def test_report_re_renders_identical_files(run_dir: Path) -> None:
    before = {name: (run_dir / name).read_bytes() for name in ("summary.md", "report.html")}
    (run_dir / "summary.md").write_text("stale")
    result = CliRunner().invoke(experiment_app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert {name: (run_dir / name).read_bytes() for name in before} == before


def test_a_bad_config_fails_with_its_message_and_no_report(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(TINY.replace('"content", "popularity"', '"content", "foo"'))
    out = tmp_path / "out"
    result = CliRunner().invoke(experiment_app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 2
    assert "variants[1].components: unknown component 'foo'" in " ".join(result.output.split())
    assert not out.exists()


def test_each_replayed_day_ranks_only_its_new_papers_with_a_model_of_the_past(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    folds, description = temporal_folds(load_config(config).dataset)
    assert description["days"] == 2 and len(folds) == 2
    for fold in folds:
        data = fold.data
        new = data.candidate_rows()
        ages = data.paper_age_days
        assert (ages[new] <= 1).all() and (np.delete(ages, new) > 1).all()  # published that day
        assert not np.isin(data.event_paper, new).any()  # nobody clicked them in training
        assert (data.event_age_days > 1).all()  # every training click is before the day
        assert data.test.nnz and set(data.test.indices) <= set(new.tolist())
        assert np.array_equal(data.catalogue, np.setdiff1d(np.arange(data.n_papers), new))
        assert fold.popularity.shape == new.shape and 0 < fold.popularity.max() <= 1
    # The next day's model has seen more: the first day's clicks are in its training data.
    assert len(folds[1].data.event_user) > len(folds[0].data.event_user)


def test_full_reciprocal_rank_follows_top_k_including_ties_and_exclusions() -> None:
    scores = np.array(
        [
            [0.9, 0.5, 0.7, 0.1],  # relevant col 1: two papers score higher -> rank 3
            [0.0, 0.0, 0.0, 0.0],  # a cold user: ties go to the lower column -> rank 3
            [0.9, 0.5, 0.7, 0.1],  # col 0 excluded, relevant col 1 -> rank 2
            [0.3, 0.2, 0.1, 0.0],  # relevant only where excluded -> 0
        ],
        np.float32,
    )
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0], [1, 0, 0, 0]]))
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]))
    ranked, _ = top_k(scores, 4, exclude=exclude)
    block = _Block(scores, ranked, relevant, exclude)
    assert block.full_reciprocal_rank() == pytest.approx([1 / 3, 1 / 3, 1 / 2, 0.0])


@pytest.mark.skipif(
    not os.environ.get("PAPERBOY_SLOW_EXPERIMENTS"),
    reason="builds citeulike-a's content embedding (~15 s); set PAPERBOY_SLOW_EXPERIMENTS=1",
)
def test_the_citeulike_protocol_loads_as_one_fold() -> None:
    folder = shared_data("citeulike-a")
    config = Path(__file__).resolve().parents[2] / "experiments/configs/citeulike-four-rankers.toml"
    dataset = load_config(config).dataset
    assert dataset.path == folder.resolve()
    folds, description = load_folds(dataset)
    assert [fold.label for fold in folds] == ["p10"] and description["n_candidates"] == 16980
    assert folds[0].popularity.max() <= 1.0
