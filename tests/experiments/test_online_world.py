"""The online report on the synthetic world: digests ranked by the real scorer under an
experiment file's arms, clicks drawn from the world's known click model.

The truth is known without the code under test: the ``explore`` arm fills its last two
positions with papers drawn uniformly from those above the reader's bar, which the click
model likes less than the ranked ones, so its CTR must come out below the control's at
those positions and overall, and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from api.cli import app
from api.demo import load_world
from recsys.catalog.papers import ids_by_external_id
from recsys.db.models import UserRow
from recsys.db.session import Database
from recsys.online.experiments import RankingDefaults, create_experiment, load_plan
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.training.model import load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.experiments.test_offpolicy_logs import _empty, _rank_day, _Rows, _send_and_click

EXPERIMENT = """\
name = "explore2"
description = "two uniformly explored slots at the bottom of the digest, against none"
salt = "docs"
alpha = 0.05
control = "control"
horizon = 1000          # sent digests per arm; or an end date, e.g. horizon = 2026-12-01

[[variant]]
name = "control"
allocation = 0.5

[[variant]]
name = "explore"
allocation = 0.5
[variant.config]
explore_slots = 2
"""
runner = CliRunner()


def build_online_world(
    db: Database, data_dir: Path, spec: Path, *, users: int = 1500, days: int = 2
) -> None:
    """Store and train the world, start the file's experiment, log ``days`` days of digests
    (5 papers each, one a day per user, from NOW) with their clicks an hour after sending."""
    settings = Settings(environment="test", data_dir=data_dir, secret_key="s")
    world = generate_world(users, 200, clicks_per_user=2, seed=3, now=NOW)
    rng = np.random.default_rng(11)
    plan = load_plan(spec)
    with db.session() as s:
        user_ids = load_world(s, world, NOW)
        papers = ids_by_external_id(s, [p.external_id or "" for p in world.papers])
        s.execute(update(UserRow).values(digest_size=5))
        train(s, settings, NOW)
        create_experiment(s, plan.name, plan.variants, NOW - timedelta(hours=1), salt=plan.salt)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    rows = _Rows({u: i for i, u in enumerate(user_ids)}, {p: i for i, p in enumerate(papers)})
    for day in range(days):
        with db.session() as s:
            now = NOW + timedelta(days=day)
            ids = _rank_day(s, model, now, RankingDefaults(0, 0.0, "salt"))
            _send_and_click(s, world, rows, ids, now, rng)


@pytest.fixture(scope="module")
def world(migrated_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("online")
    spec = folder / "explore2.toml"
    spec.write_text(EXPERIMENT, encoding="utf-8")
    _empty(migrated_db)
    build_online_world(migrated_db, folder / "var", spec)
    yield folder
    _empty(migrated_db)


def _report(db: Database, folder: Path, *args: str) -> Any:
    env = {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(folder / "var")}
    spec = str(folder / "explore2.toml")
    result = runner.invoke(app, ["experiment", "online-report", "--file", spec, "--json", *args],
                           env=env)  # fmt: skip
    assert result.exit_code == 0, result.stdout + (result.stderr or "")
    return json.loads(result.stdout)


def test_the_report_finds_the_known_loss_of_the_explored_slots(
    migrated_db: Database, world: Path
) -> None:
    # The day after the last sending: every digest still inside its window.
    interim = _report(migrated_db, world, "--as-of", "2026-11-23T00:00")
    arms = interim["interim"]["arms"]
    assert arms["control"]["open"] == arms["control"]["digests"] > 1000
    assert interim["final"]["status"].startswith("horizon reached; click windows close")
    assert interim["interim"]["decision"].startswith("can stop now: explore is worse")

    closed = (NOW + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")  # every window closed
    final = _report(migrated_db, world, "--as-of", closed)["final"]
    assert final["status"].startswith("final")
    assert final["differences"]["explore"]["verdict"] == "worse"
    control, explore = (final["arms"][n]["positions"] for n in ("control", "explore"))
    ctr = {n: [p["ctr"] for p in rows] for n, rows in (("c", control), ("e", explore))}
    # The uniformly drawn slots: drawn from the papers above the reader's bar (never below
    # it), which the click model likes less than the ranked 4th and 5th (0.09 vs 0.17+ here;
    # the factor 0.5 this once asserted held while the draw took below-bar papers too).
    assert max(ctr["e"][3:]) < min(ctr["c"][3:])
    assert all(abs(e - c) < 0.05 for e, c in zip(ctr["e"][:3], ctr["c"][:3], strict=True))
