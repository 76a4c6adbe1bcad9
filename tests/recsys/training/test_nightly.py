import numpy as np
import pytest
from sqlalchemy import delete

from recsys.catalog.papers import all_paper_ids
from recsys.db.models import EventRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import artifacts
from recsys.training.model import load_active_model
from recsys.training.nightly import TrainingError, train
from tests.conftest import NOW
from tests.recsys import world


def test_training_writes_activates_and_fills_the_store(db: Database, settings: Settings) -> None:
    with db.session() as s:
        world.load(s)
        report = train(s, settings, NOW)
        paper_ids = all_paper_ids(s)

    assert artifacts.active_version(settings.models_dir) == report.version
    assert (report.n_papers, report.n_users, report.n_events) == (12, 3, 4)
    model = load_active_model(settings.models_dir, settings.data_dir)
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
    assert artifacts.active_version(settings.models_dir) == second.version
    assert artifacts.list_versions(settings.models_dir) == sorted([first.version, second.version])


def test_training_without_papers_says_what_to_do(db: Database, settings: Settings) -> None:
    with db.session() as s, pytest.raises(TrainingError, match="paperboy ingest"):
        train(s, settings, NOW)
    assert artifacts.active_version(settings.models_dir) is None
