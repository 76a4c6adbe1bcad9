"""The loaded model on a host that did not train it: fetched from the database, and papers
harvested after training embedded there the same as on the host that trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.catalog.embeddings import EmbeddingStore
from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import store
from recsys.training.model import embeddings_dir, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world

LATE = ["contrastive pretraining of vision transformers", "speech enhancement with diffusion"]


@pytest.fixture()
def hosts(db: Database, settings: Settings, tmp_path: Path) -> tuple[Settings, Settings]:
    """The host that trained (``settings``) and another with its own data folder; two papers
    harvested after training."""
    with db.session() as s:
        world.load(s)
        train(s, settings, NOW)
        upsert_papers(s, [world.paper(LATE[0], "vision"), world.paper(LATE[1], "audio")], NOW)
    return settings, settings.model_copy(update={"data_dir": tmp_path / "other-host"})


def test_another_host_fetches_the_active_model_and_scores_alike(
    db: Database, hosts: tuple[Settings, Settings]
) -> None:
    here, there = hosts
    with db.session() as s:
        mine = load_active_model(s, here.models_dir, here.data_dir)
        theirs = load_active_model(s, there.models_dir, there.data_dir)
    assert mine is not None and theirs is not None and mine.version == theirs.version
    np.testing.assert_array_equal(theirs.store.ids(), mine.store.ids())
    np.testing.assert_array_equal(
        theirs.store.get(mine.store.ids()), mine.store.get(mine.store.ids())
    )


def test_papers_added_after_training_are_embedded_alike_on_every_host(
    db: Database, hosts: tuple[Settings, Settings]
) -> None:
    here, there = hosts
    with db.session() as s:
        late = np.array(list(ids_by_title(s, LATE).values()), dtype=np.int64)
        mine = load_active_model(s, here.models_dir, here.data_dir)
        theirs = load_active_model(s, there.models_dir, there.data_dir)
        assert mine is not None and theirs is not None
        assert theirs.store.missing(late).size == 2  # published before they were harvested
        here_rows = mine.paper_vectors(s, late)  # what the embed task does on its host
        there_rows = theirs.paper_vectors(s, late)  # what a score task does on another

    np.testing.assert_allclose(there_rows, here_rows, rtol=0, atol=1e-6)
    assert np.linalg.norm(there_rows, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    # Each host appended them to its own store, once: the next chunk reads them back.
    for host in (here, there):
        version = mine.version
        reopened = EmbeddingStore(embeddings_dir(host.data_dir, version), mine.embedder.dim)
        np.testing.assert_array_equal(reopened.get(late), here_rows)


def test_a_host_switches_when_another_version_is_activated(
    db: Database, hosts: tuple[Settings, Settings]
) -> None:
    here, there = hosts
    with db.session() as s:
        first = store.active_version(s)
        second = train(s, here, NOW).version
        assert first is not None
        store.activate(s, first, NOW)  # `paperboy models rollback` on the training host
    with db.session() as s:
        model = load_active_model(s, there.models_dir, there.data_dir)
    assert model is not None and model.version == first != second
    assert not store.is_cached(second, there.models_dir)  # never fetched what it never used
