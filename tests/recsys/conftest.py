"""Fixtures for the pipeline tests: the small known-answer world, stored and trained."""

from __future__ import annotations

import pytest

from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world


@pytest.fixture()
def ids(db: Database, settings: Settings) -> dict[str, int]:
    """The world of ``tests/recsys/world.py`` stored and trained; ids by name."""
    with db.session() as s:
        names = world.load(s)
        train(s, settings, NOW)
    return names


@pytest.fixture()
def model(ids: dict[str, int], db: Database, settings: Settings) -> Model:
    """The model trained on that world."""
    with db.session() as s:
        loaded = load_active_model(s, settings.models_dir, settings.data_dir)
    assert loaded is not None
    return loaded
