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
