"""`paperboy models list / activate / rollback` act on the database, so on every host."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from recsys.db.session import Database
from recsys.training import store
from tests.conftest import NOW
from tests.recsys.training.conftest import Host, publish_version

runner = CliRunner()


def _env(db: Database, data_dir: Path) -> dict[str, str]:
    return {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(data_dir)}


def _published(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        for n, version in enumerate(("v1", "v2")):
            publish_version(s, Host(tmp_path / "trainer"), version, {"data": {"n_papers": n}})
        store.activate(s, "v2", NOW)


def test_any_host_lists_the_published_versions(db: Database, tmp_path: Path) -> None:
    _published(db, tmp_path)
    result = runner.invoke(app, ["models", "list", "--json"], env=_env(db, tmp_path / "elsewhere"))
    assert result.exit_code == 0, result.output
    listed = [(v["version"], v["active"], v["n_papers"]) for v in json.loads(result.stdout)]
    assert listed == [("v1", False, 0), ("v2", True, 1)]


def test_activate_and_rollback_on_one_host_move_every_host(db: Database, tmp_path: Path) -> None:
    _published(db, tmp_path)
    rolled = runner.invoke(app, ["models", "rollback"], env=_env(db, tmp_path / "host-a"))
    assert rolled.exit_code == 0, rolled.output
    with db.session() as s:
        assert store.active_version(s) == "v1"
    again = runner.invoke(app, ["models", "activate", "v2"], env=_env(db, tmp_path / "host-b"))
    assert again.exit_code == 0, again.output
    with db.session() as s:
        assert store.active_version(s) == "v2"


def test_activating_an_unknown_version_says_which_exist(db: Database, tmp_path: Path) -> None:
    _published(db, tmp_path)
    result = runner.invoke(app, ["models", "activate", "v9"], env=_env(db, tmp_path / "h"))
    assert result.exit_code == 2
    assert "no published model version 'v9'" in result.output and "'v1', 'v2'" in result.output
    with db.session() as s:
        assert store.active_version(s) == "v2"
