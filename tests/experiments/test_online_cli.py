"""``paperboy experiment online-*``: create, report, stop, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from experiments.online_cli import parse_variant_option
from recsys.db.session import Database

runner = CliRunner()


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(tmp_path / "var")}


def _run(db: Database, tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["experiment", *args], env=_env(db, tmp_path))
    return result.exit_code, result.stdout + (result.stderr or "")


def test_an_experiment_is_created_reported_and_stopped(db: Database, tmp_path: Path) -> None:
    code, out = _run(
        db, tmp_path, "online-create", "--name", "explore2", "--salt", "s1",
        "--variant", "control=0.5", "--variant", 'explore=0.5:{"explore_slots": 2}', "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out) == {
        "experiment": "explore2", "status": "running", "salt": "s1",
        "variants": [
            {"name": "control", "allocation": 0.5, "config": {}},
            {"name": "explore", "allocation": 0.5, "config": {"explore_slots": 2}},
        ],
    }  # fmt: skip

    code, out = _run(db, tmp_path, "online-report", "--name", "explore2", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert set(report["arms"]) == {"control", "explore"}
    assert report["arms"]["explore"]["digests"] == 0 and report["window_days"] == 7

    code, out = _run(db, tmp_path, "online-report", "--name", "explore2")
    assert code == 0 and "explore2 (running)" in out

    code, out = _run(db, tmp_path, "online-stop", "--name", "explore2", "--json")
    assert json.loads(out) == {"experiment": "explore2", "status": "stopped", "changed": True}


def test_bad_variants_and_unknown_names_exit_2_saying_why(db: Database, tmp_path: Path) -> None:
    code, out = _run(
        db, tmp_path, "online-create", "--name", "x", "--variant", "a=0.7", "--variant", "b=0.7"
    )
    assert code == 2 and "sum to 1.4" in out
    code, out = _run(db, tmp_path, "online-create", "--name", "x", "--variant", "a=0.5:{bad")
    assert code == 2 and "--variant 'a=0.5:{bad'" in out
    code, out = _run(db, tmp_path, "online-report", "--name", "nope")
    assert code == 2 and "no experiment called 'nope'" in out


def test_a_variant_option_parses_name_share_and_config() -> None:
    assert parse_variant_option('b=0.25:{"min_score": 0.1}') == {
        "name": "b", "allocation": 0.25, "config": {"min_score": 0.1},
    }  # fmt: skip


EXPERIMENT_FILE = """\
name = "explore2"
salt = "s1"
alpha = 0.1
horizon = 200

[[variant]]
name = "control"
allocation = 0.5

[[variant]]
name = "explore"
allocation = 0.5
[variant.config]
explore_slots = 2
"""


def test_an_experiment_file_creates_and_reports_with_its_plan(db: Database, tmp_path: Path) -> None:
    spec = tmp_path / "explore2.toml"
    spec.write_text(EXPERIMENT_FILE, encoding="utf-8")
    code, out = _run(db, tmp_path, "online-create", "--file", str(spec), "--json")
    assert code == 0, out
    created = json.loads(out)
    assert (created["experiment"], created["salt"], created["alpha"]) == ("explore2", "s1", 0.1)
    assert created["horizon"] == {"digests_per_arm": 200}
    assert created["variants"][1]["config"] == {"explore_slots": 2}

    page = tmp_path / "report.html"
    code, out = _run(db, tmp_path, "online-report", "--file", str(spec), "--json",
                     "--html", str(page))  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert report["plan"] == {"alpha": 0.1, "control": "control",
                              "horizon": {"digests_per_arm": 200},
                              "planned_digests_per_arm": 200}  # fmt: skip
    assert report["interim"]["decision"].startswith("no decision yet")
    assert report["final"]["status"] == (
        "horizon not reached: 200 digests per arm planned, sent so far: control 0, explore 0"
    )
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "Online experiment: explore2" in text
    assert "no decision yet" in text and "CTR per position (interim)" in text
    assert "<script" not in text and "<link" not in text and "src=" not in text

    code, out = _run(db, tmp_path, "online-report", "--name", "explore2", "--file", str(spec))
    assert code == 0 and "alpha 0.1, control control, horizon digests_per_arm 200" in out
    assert "always-valid confidence sequences" in out

    # The plan was stored at creation: the report needs no file to read it.
    spec.unlink()
    code, out = _run(db, tmp_path, "online-report", "--name", "explore2", "--json")
    assert code == 0, out
    assert json.loads(out)["plan"] == report["plan"]


def test_a_bad_experiment_file_exits_2_naming_the_file_and_line(
    db: Database, tmp_path: Path
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(EXPERIMENT_FILE.replace("explore_slots = 2", "explore_slots = -1"))
    code, out = _run(db, tmp_path, "online-create", "--file", str(spec))
    assert code == 2 and f"{spec}:10: variant[1].explore_slots: -1 must be in 0..50" in out
    code, out = _run(db, tmp_path, "online-create", "--file", str(spec), "--name", "x")
    assert code == 2 and "not both" in out
    code, out = _run(db, tmp_path, "online-create")
    assert code == 2 and "give --file exp.toml, or --name and at least one --variant" in out
    code, out = _run(db, tmp_path, "online-report")
    assert code == 2 and "give --name, or --file" in out
    spec.write_text('name = "x"\n')
    code, out = _run(db, tmp_path, "online-create", "--file", str(spec))
    assert code == 2 and "variant: missing: add [[variant]] tables" in out
