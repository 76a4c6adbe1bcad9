"""``paperboy experiment interleave-*``: create, report, stop with online-stop, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from recsys.db.session import Database

runner = CliRunner()


def _run(db: Database, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(tmp_path / "var")}
    result = runner.invoke(app, ["experiment", *args], env=env)
    return result.exit_code, result.stdout + (result.stderr or "")


def test_an_interleaving_experiment_is_created_reported_and_stopped(
    db: Database, tmp_path: Path
) -> None:
    code, out = _run(
        db, tmp_path, "interleave-create", "--name", "div", "--salt", "s1",
        "--a", "{}", "--b", '{"diversity": 0.5}', "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out) == {
        "experiment": "div", "kind": "interleave", "status": "running", "salt": "s1",
        "share": 1.0, "a": {}, "b": {"diversity": 0.5},
    }  # fmt: skip

    code, out = _run(db, tmp_path, "interleave-report", "--name", "div", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["digests"], report["wins_a"], report["wins_b"], report["ties"]) == (0, 0, 0, 0)
    assert report["preference_a"] is None and report["preference_a_wilson"] == [0.0, 1.0]

    code, out = _run(db, tmp_path, "interleave-report", "--name", "div")
    assert code == 0 and "div (running)" in out and "A preferred" in out

    code, out = _run(db, tmp_path, "online-stop", "--name", "div", "--json")
    assert json.loads(out) == {"experiment": "div", "status": "stopped", "changed": True}
    code, out = _run(db, tmp_path, "interleave-report", "--name", "div", "--json")
    assert json.loads(out)["status"] == "stopped"


def test_bad_configs_and_kinds_exit_2_saying_why(db: Database, tmp_path: Path) -> None:
    code, out = _run(db, tmp_path, "interleave-create", "--name", "x", "--a", "{bad", "--b", "{}")
    assert code == 2 and "--a '{bad': not JSON" in out
    code, out = _run(
        db, tmp_path, "interleave-create", "--name", "x", "--a", "{}", "--b", '{"speed": 1}'
    )
    assert code == 2 and "--b: unknown key(s) ['speed']" in out
    code, out = _run(
        db, tmp_path, "interleave-create", "--name", "x", "--a", "{}", "--b", "{}", "--share", "2"
    )
    assert code == 2 and "share: 2.0 must be a number in (0, 1]" in out
    code, out = _run(db, tmp_path, "online-create", "--name", "ab", "--variant", "c=1")
    assert code == 0, out
    code, out = _run(db, tmp_path, "interleave-report", "--name", "ab")
    assert code == 2 and "is a split experiment" in out
    code, out = _run(db, tmp_path, "interleave-report", "--name", "nope")
    assert code == 2 and "no experiment called 'nope'" in out
