"""The command line: ingest reports, bad input, help."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app, serve_refusal
from recsys.db.models import PaperRow
from recsys.db.session import Database
from recsys.settings import DEV_SECRET_KEY, Settings
from tests.conftest import shared_data

runner = CliRunner()
# 500 records in the four dumps; 6 repeat (see tests/recsys/catalog/sources).
SEED_UNIQUE_PAPERS = 494


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(tmp_path / "var")}


def _paper_count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(PaperRow)) or 0)


def test_ingesting_the_seed_dumps_twice_adds_each_paper_once(db: Database, tmp_path: Path) -> None:
    dumps = sorted(str(p) for p in shared_data("seed-papers").glob("*.txt"))
    assert len(dumps) == 4

    first = runner.invoke(app, ["ingest", *dumps, "--json"], env=_env(db, tmp_path))
    second = runner.invoke(app, ["ingest", *dumps, "--json"], env=_env(db, tmp_path))

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "read": 500, "new": SEED_UNIQUE_PAPERS, "updated": 0, "skipped": 6, "errors": [],
    }  # fmt: skip
    assert json.loads(second.stdout)["new"] == 0
    assert json.loads(second.stdout)["skipped"] == 500
    assert _paper_count(db) == SEED_UNIQUE_PAPERS


def test_a_revised_abstract_updates_the_paper(db: Database, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1.jsonl", tmp_path / "v2.jsonl"
    v1.write_text(json.dumps({"id": "2401.00001v1", "title": "A Paper", "abstract": "Old."}) + "\n")
    v2.write_text(json.dumps({"id": "2401.00001v2", "title": "A Paper", "abstract": "New."}) + "\n")

    runner.invoke(app, ["ingest", str(v1)], env=_env(db, tmp_path))
    result = runner.invoke(app, ["ingest", str(v2), "--json"], env=_env(db, tmp_path))

    assert json.loads(result.stdout)["updated"] == 1
    with db.session() as s:
        (paper,) = s.scalars(select(PaperRow)).all()
        assert (paper.arxiv_id, paper.abstract) == ("2401.00001", "New.")


def test_a_malformed_file_names_file_and_line_and_writes_nothing(
    db: Database, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "a", "title": "Fine"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "b", "title": "Fine too"}) + "\n{not json\n")

    result = runner.invoke(app, ["ingest", str(good), str(bad), "--json"], env=_env(db, tmp_path))

    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert len(errors) == 1 and errors[0].startswith(f"{bad}:2:")
    assert _paper_count(db) == 0


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "demo", "serve", "worker", "train", "digest", "synth"):
        assert command in result.stdout


def test_a_readable_result_goes_to_stdout_and_errors_to_stderr(
    db: Database, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "a", "title": "Fine"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")

    stored = runner.invoke(app, ["ingest", str(good)], env=_env(db, tmp_path))
    refused = runner.invoke(app, ["ingest", str(bad)], env=_env(db, tmp_path))

    assert stored.exit_code == 0, stored.output
    assert "new: 1" in stored.stdout and "new: 1" not in stored.stderr
    assert refused.exit_code == 1
    assert f"error: {bad}:1:" in refused.stderr


def test_the_bench_and_experiment_commands_load_only_when_asked_for() -> None:
    code = "import sys, api.cli; print(sorted({'experiments', 'benchmarks'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"

    result = runner.invoke(app, ["bench", "send", "--help"])
    assert result.exit_code == 0, result.output
    assert "--users" in result.stdout


def test_help_works_in_an_install_without_benchmarks_and_experiments() -> None:
    code = (
        "import sys; sys.modules['benchmarks'] = sys.modules['experiments'] = None; "
        "from api.cli import app; app(['--help'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\W*ingest\s", result.stdout, re.M)
    assert not re.search(r"^\W*(bench|experiment)\s", result.stdout, re.M)


def test_serve_refuses_a_public_address_with_the_development_secret(
    db: Database, tmp_path: Path
) -> None:
    env = {**_env(db, tmp_path), "PAPERBOY_SECRET_KEY": None, "PAPERBOY_ENVIRONMENT": None}

    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-migrate"], env=env)

    assert result.exit_code == 2
    assert "0.0.0.0 is reachable" in result.stderr
    assert "secrets.token_urlsafe(32)" in result.stderr


@pytest.mark.parametrize(
    ("host", "refused"),
    [("127.0.0.1", False), ("localhost", False), ("::1", False), ("127.3.2.1", False)]
    + [("0.0.0.0", True), ("::", True), ("192.168.1.4", True), ("paperboy.example", True)],
)
def test_only_loopback_hosts_may_use_the_development_secret(host: str, refused: bool) -> None:
    development = Settings(environment="development", secret_key=DEV_SECRET_KEY)
    real = Settings(environment="development", secret_key=secrets.token_urlsafe(32))

    assert (serve_refusal(development, host) is not None) is refused
    assert serve_refusal(real, host) is None


@pytest.mark.parametrize("command", ["serve", "run", "worker"])
def test_every_long_running_command_takes_a_log_level_and_refuses_a_wrong_one(
    command: str,
) -> None:
    assert "--log-level" in runner.invoke(app, [command, "--help"]).output

    result = runner.invoke(app, [command, "--log-level", "loud"])

    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())  # unwrap rich's error box
    assert "'loud' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in message
