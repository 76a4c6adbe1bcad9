from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import delete

from api.demo import load_world
from recsys.catalog.papers import all_paper_ids
from recsys.db.locks import try_exclusive
from recsys.db.models import EventRow, UserRow
from recsys.db.session import Database
from recsys.digests.scoring import content_explainer, rank_users
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.training import artifacts, store
from recsys.training.model import load_active_model
from recsys.training.nightly import (
    TRAINING_LOCK,
    TrainingError,
    prune_models,
    train,
    train_exclusively,
)
from tests.conftest import NOW
from tests.recsys import world


def test_training_writes_activates_and_fills_the_store(db: Database, settings: Settings) -> None:
    with db.session() as s:
        world.load(s)
        report = train(s, settings, NOW)
        paper_ids = all_paper_ids(s)

    with db.session() as s:
        assert store.active_version(s) == report.version
        assert store.list_versions(s) == [report.version]  # published for every host
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert (report.n_papers, report.n_users, report.n_events) == (12, 3, 4)
    assert model is not None and model.version == report.version
    np.testing.assert_array_equal(np.sort(model.store.ids()), paper_ids)
    manifest = artifacts.load_artifact(settings.models_dir, report.version).manifest
    assert manifest["component"] == "hybrid"
    assert manifest["data"] == {"n_papers": 12, "n_users": 3, "n_events": 4}
    blend = manifest["blend"]
    assert sorted(blend["weights"]) == ["als", "content", "lightfm", "linear", "popularity"]
    # Ada and Ben clicked two papers each: their latest click is held out to learn weights.
    assert blend["source"] == "validation" and blend["n_validation_users"] == 2
    assert model.component.name == "hybrid"


def test_before_any_click_the_content_profile_ranks_alone(db: Database, settings: Settings) -> None:
    with db.session() as s:
        world.load(s)
        s.execute(delete(EventRow))
        report = train(s, settings, NOW)
    manifest = artifacts.load_artifact(settings.models_dir, report.version).manifest
    assert manifest["component"] == "content"
    assert manifest["blend"] == {"source": "content only: no positive events yet"}


def test_a_second_training_activates_a_new_version(db: Database, settings: Settings) -> None:
    with db.session() as s:
        world.load(s)
        first = train(s, settings, NOW)
        second = train(s, settings, NOW)
        assert first.version != second.version
        assert store.active_version(s) == second.version
        assert store.list_versions(s) == sorted([first.version, second.version])


def test_training_without_papers_says_what_to_do(db: Database, settings: Settings) -> None:
    with db.session() as s, pytest.raises(TrainingError, match="paperboy ingest"):
        train(s, settings, NOW)
    with db.session() as s:
        assert store.active_version(s) is None


def test_a_second_training_while_one_holds_the_lock_does_nothing(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        world.load(s)
    with db.session() as holder, try_exclusive(holder, TRAINING_LOCK) as held:
        assert held
        with db.session() as s:
            assert train_exclusively(s, settings, NOW) is None
    assert artifacts.list_versions(settings.models_dir) == []
    with db.session() as s:  # released: the next one trains
        report = train_exclusively(s, settings, NOW)
    with db.session() as s:
        assert report is not None and store.active_version(s) == report.version


def test_the_first_model_is_trained_only_when_papers_exist_and_none_is_active(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        assert train_exclusively(s, settings, NOW, only_if_missing=True) is None  # no papers
        world.load(s)
    with db.session() as s:
        first = train_exclusively(s, settings, NOW, only_if_missing=True)
    assert first is not None
    with db.session() as s:
        assert train_exclusively(s, settings, NOW, only_if_missing=True) is None  # one is active
    assert artifacts.list_versions(settings.models_dir) == [first.version]


def test_old_versions_and_killed_trainings_leftovers_are_pruned(
    db: Database, settings: Settings
) -> None:
    keep = settings.model_copy(update={"keep_models": 2})
    with db.session() as s:
        world.load(s)
    versions = []
    for day in range(4):
        with db.session() as s:
            report = train_exclusively(s, keep, NOW + timedelta(days=day))
            assert report is not None
            versions.append(report.version)
    (settings.models_dir / ".tmp-killed-abc").mkdir()
    # A training killed after filling its store (its name is older than the last published).
    (settings.data_dir / "embeddings" / "20261121T065900-dead00").mkdir()
    with db.session() as s:
        removed = prune_models(s, keep)
        assert store.list_versions(s) == versions[-2:]

    assert removed == []  # each training pruned as it went
    assert artifacts.list_versions(settings.models_dir) == versions[-2:]
    assert not (settings.models_dir / ".tmp-killed-abc").exists()
    stores = sorted(p.name for p in (settings.data_dir / "embeddings").iterdir())
    assert stores == versions[-2:]


def test_the_bar_is_calibrated_on_held_out_clicks_stored_and_applied(
    db: Database, settings: Settings
) -> None:
    synthetic = generate_world(80, 600, seed=3, now=NOW)
    with db.session() as s:
        user_ids = load_world(s, synthetic, NOW)
        train(s, settings, NOW)
    with db.session() as s:
        version = store.active_version(s)
        assert version is not None
        stored = store.read_manifest(s, version)["bar"]
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None

    assert stored["method"] == "heldout-click-rate" and stored["n_heldout"] >= 30
    assert 0.0 < stored["score"] < 1.0
    assert model.bar.score == stored["score"]
    with db.session() as s:
        users = [s.get(UserRow, u) for u in user_ids[:20]]
        since = {u: NOW - timedelta(days=7) for u in user_ids[:20]}
        ranking = rank_users(s, model, [u for u in users if u is not None], since, NOW)
        cosine = content_explainer(model).score(ranking.context.block, ranking.candidates.block)
    sent = [cosine[row, d.slate.cols] for row, d in enumerate(ranking.digests)]
    assert all((row >= model.bar.score - 1e-6).all() for row in sent)
    assert (cosine < model.bar.score).any()  # the bar did keep papers out
