"""Reports: the JSON record, the Markdown summary and the HTML page, from known results."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from experiments import report, stats
from experiments.config import load_config
from experiments.runner import Results
from recsys.online.analysis import SentLog, sequential_result
from recsys.online.assignment import Variant
from recsys.online.experiments import ExperimentPlan
from tests.conftest import NOW

CONFIG = """
name = "known"
seeds = [0, 1]
control = "a"
metrics = ["recall@10", "diversity@10", "coverage@10"]
[dataset]
kind = "synthetic"
[[variants]]
name = "a"
components = ["content"]
[[variants]]
name = "b"
components = ["als"]
[[variants]]
name = "c"
components = ["lightfm"]
"""


@pytest.fixture()
def results(tmp_path: Path) -> Results:
    """Three variants on 400 users: b is clearly better than a on recall, c no different."""
    path = tmp_path / "known.toml"
    path.write_text(CONFIG)
    config = load_config(path)
    rng = np.random.default_rng(0)
    base = rng.random(400)
    per_user = {
        "recall@10": {"a": base, "b": base + 0.1, "c": base + rng.normal(0, 0.01, 400)},
        "diversity@10": {"a": 0.5 + 0 * base, "b": 0.4 + 0 * base, "c": 0.6 + 0 * base},
    }
    per_user["recall@10"]["c"][3] = np.nan  # an undefined value stays null and out of tests
    means = {m: {v: [float(np.nanmean(x))] * 2 for v, x in d.items()} for m, d in per_user.items()}
    intervals = {
        m: {v: stats.bootstrap_ci(x, seed=0) for v, x in d.items()} for m, d in per_user.items()
    }
    folds = [
        {"label": f"2024-05-3{i}", "n_users": 200, "values": {
            "recall@10": {"a": 0.5, "b": 0.6, "c": 0.5},
            "diversity@10": {"a": 0.5, "b": 0.4, "c": 0.6},
            "coverage@10": {"a": 0.9, "b": 0.7, "c": 1.0},
        }}
        for i in range(2)
    ]  # fmt: skip
    return Results(
        config=config,
        users=np.arange(400),
        per_user=per_user,
        per_seed={**means, "coverage@10": {"a": [0.9, 0.8], "b": [0.7, 0.7], "c": [1.0, 1.0]}},
        intervals=intervals,
        comparisons=stats.compare_all(per_user, "a"),
        folds=folds,
        blend={},
        seconds={"variants": {"a": {"fit": 1.0, "rank": 0.5}}, "load": 0.1, "total": 2.0},
        dataset={"kind": "synthetic", "split": "temporal", "n_users": 500, "days": 2},
    )


def test_the_record_keeps_per_user_vectors_and_means_that_match_them(
    results: Results, tmp_path: Path
) -> None:
    paths = report.write_results(results, tmp_path / "out")
    doc = json.loads(paths["results"].read_text())
    stored = doc["per_user"]["recall@10"]["c"]
    assert stored[3] is None and len(stored) == 400
    mean = np.mean([v for v in stored if v is not None])
    assert doc["metrics"]["recall@10"]["variants"]["c"]["mean"] == pytest.approx(mean)
    coverage = doc["metrics"]["coverage@10"]["variants"]["a"]
    assert coverage["mean"] == pytest.approx(0.85) and coverage["ci_low"] is None
    assert len(doc["comparisons"]) == 4 and "toml" in doc["config"]


def test_the_summary_names_the_winner_with_its_interval_and_the_verdicts(
    results: Results, tmp_path: Path
) -> None:
    summary = report.write_results(results, tmp_path)["summary"].read_text()
    b_row = next(row for row in summary.splitlines() if row.startswith("| recall@10 | **b**"))
    low, high = results.intervals["recall@10"]["b"]
    assert f"[{low:.3f}, {high:.3f}]" in b_row and "better than control" in b_row
    assert "| c | " in summary and "no significant difference" in summary
    assert "worse than control" in summary  # b's diversity is 0.1 lower
    assert "| coverage@10 | **c** | 1.000 –" in summary
    assert "| 2024-05-30 | 200 | 0.500 | 0.600 | 0.500 |" in summary  # per-fold table


def test_the_html_is_self_contained_with_well_formed_plots(
    results: Results, tmp_path: Path
) -> None:
    page = report.write_results(results, tmp_path)["html"].read_text()
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    # One interval chart per metric, the recall-vs-diversity scatter, one curve per metric.
    assert len(svgs) == 3 + 1 + 3
    for svg in svgs:
        ET.fromstring(svg)
    assert "Trade-off: recall@10 vs diversity@10" in page


def test_render_refuses_a_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="results.json: cannot read"):
        report.render(tmp_path)
    (tmp_path / "results.json").write_text('{"format": 99}')
    with pytest.raises(ValueError, match="not a results file"):
        report.render(tmp_path)


def test_svg_ticks_are_round_numbers_inside_the_range() -> None:
    assert report._ticks(0.12, 0.48) == pytest.approx([0.2, 0.3, 0.4])
    assert report._ticks(1.0, 1.0) == [1.0]


def test_the_online_page_keeps_a_negative_difference_and_has_no_external_parts() -> None:
    # control clicks 2 of 3 and 1 of 3; explore 0 of 3 and 1 of 3: a -1/3 difference.
    log = SentLog(
        variant=["control", "control", "explore", "explore"],
        sent_at=[NOW - timedelta(days=9)] * 4,
        open=np.zeros(4, dtype=bool),
        positions=[[0, 1, 2]] * 4,
        position_clicks=[[0, 1], [0], [], [2]],
    )
    plan = ExperimentPlan("e", (Variant("control", 0.5), Variant("explore", 0.5)), "control")
    result = {"experiment": "e", "status": "running", "window_days": 7.0,
              "now": NOW.isoformat(), "arms": {},
              **sequential_result(log, plan, NOW, timedelta(days=7))}  # fmt: skip
    page = report.online_html(result)
    assert "-33.33 pts" in page and "<script" not in page and "<link" not in page
    tables = {title: rows for title, _, rows in report.online_tables(result)}
    positions = tables["CTR per position (interim)"]
    assert positions == [
        ["control", "100.00% (2/2)", "50.00% (1/2)", "0.00% (0/2)"],
        ["explore", "0.00% (0/2)", "0.00% (0/2)", "50.00% (1/2)"],
    ]
