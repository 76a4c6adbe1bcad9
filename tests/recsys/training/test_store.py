"""The shared model store: publish on one host, fetch and verify on another, prune."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, func, select, update

from recsys.catalog.embeddings import EmbeddingStore
from recsys.db.models import ModelChunkRow, ModelVersionRow
from recsys.db.session import Database
from recsys.training import artifacts, store
from tests.conftest import NOW
from tests.recsys.training.conftest import Host, publish_version


def fetch(db: Database, host: Host, version: str) -> bool:
    with db.session() as s:
        return store.ensure_cached(s, version, host.models, host.embeddings)


def test_a_published_version_is_fetched_identically_by_another_host(
    db: Database, trainer: Host, other: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CHUNK_BYTES", 100)  # several chunks per file
    weights = {"w": np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)}
    with db.session() as s:
        publish_version(s, trainer, "v1", {"created_at": "x"}, weights)
        assert s.scalar(select(func.max(ModelChunkRow.seq))) >= 4

    assert fetch(db, other, "v1") is True
    assert fetch(db, other, "v1") is False  # cached: nothing read again
    loaded = artifacts.load_artifact(other.models, "v1")
    np.testing.assert_array_equal(loaded.arrays["w"], weights["w"])
    assert loaded.manifest["created_at"] == "x"
    vectors = EmbeddingStore(other.embeddings / "v1", dim=2)
    np.testing.assert_array_equal(vectors.get(np.array([12, 10])), [[4, 5], [0, 1]])
    assert not list(other.models.glob(".fetch-v1-*"))  # no temporary folder left


def test_the_manifest_and_the_active_version_are_database_facts(
    db: Database, trainer: Host
) -> None:
    with db.session() as s:
        assert store.active_version(s) is None
        publish_version(s, trainer, "v1", {"created_at": "then"})
        publish_version(s, trainer, "v2")
        store.activate(s, "v1", NOW)
        store.activate(s, "v2", NOW)
    with db.session() as s:
        assert store.active_version(s) == "v2"
        assert store.read_manifest(s, "v1")["created_at"] == "then"
        assert store.list_versions(s) == ["v1", "v2"]


def test_an_unpublished_version_cannot_be_activated_or_fetched(
    db: Database, trainer: Host, other: Host
) -> None:
    with db.session() as s:
        publish_version(s, trainer, "v1")
        store.activate(s, "v1", NOW)
        with pytest.raises(FileNotFoundError, match=r"no published model version 'v9'.*\['v1'\]"):
            store.activate(s, "v9", NOW)
        assert store.active_version(s) == "v1"
    with pytest.raises(FileNotFoundError, match="'v9'"):
        fetch(db, other, "v9")


def test_a_version_cannot_be_published_twice(db: Database, trainer: Host) -> None:
    with db.session() as s:
        publish_version(s, trainer, "v1")
        with pytest.raises(FileExistsError, match="'v1' is already published"):
            store.publish(s, "v1", trainer.models / "v1", trainer.embeddings / "v1", NOW)


def test_a_corrupt_chunk_is_named_and_nothing_is_cached(
    db: Database, trainer: Host, other: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CHUNK_BYTES", 100)
    with db.session() as s:
        publish_version(s, trainer, "v1")
        s.execute(
            update(ModelChunkRow)
            .where(ModelChunkRow.path == "model/arrays.npz", ModelChunkRow.seq == 1)
            .values(data=b"flipped bits")
        )
    with pytest.raises(
        store.StoreError,
        match=r"version 'v1', file 'model/arrays.npz', chunk 1 does not match its sha256",
    ):
        fetch(db, other, "v1")
    assert not store.is_cached("v1", other.models)
    assert not (other.embeddings / "v1").exists()
    assert [p.name for p in other.models.iterdir()] == [".fetch-v1.lock"]


def test_a_missing_chunk_is_named(
    db: Database, trainer: Host, other: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CHUNK_BYTES", 100)
    with db.session() as s:
        publish_version(s, trainer, "v1")
        s.execute(delete(ModelChunkRow).where(ModelChunkRow.path == "embeddings/ids.npy"))
    with pytest.raises(store.StoreError, match=r"'embeddings/ids.npy', chunk 0 is missing"):
        fetch(db, other, "v1")
    assert not store.is_cached("v1", other.models)


@pytest.mark.parametrize("path", ["model/../../escape", "/etc/passwd", "model/.hidden", "x/y"])
def test_an_unsafe_published_file_name_is_refused(
    db: Database, trainer: Host, other: Host, tmp_path: Path, path: str
) -> None:
    with db.session() as s:
        publish_version(s, trainer, "v1")
        files = s.scalar(select(ModelVersionRow.files).where(ModelVersionRow.version == "v1"))
        files[path] = files.pop("model/manifest.json")
        s.execute(update(ModelVersionRow).values(files=files))
    with pytest.raises(store.StoreError, match="is unsafe"):
        fetch(db, other, "v1")
    assert not (tmp_path / "escape").exists()


def _fetch_in_child(url: str, root: str, start: object, results: object) -> None:
    host, database = Host(Path(root)), Database(url)
    start.wait()  # type: ignore[attr-defined]
    with database.session() as s:
        fetched = store.ensure_cached(s, "v1", host.models, host.embeddings)
    results.put(fetched)  # type: ignore[attr-defined]
    database.dispose()


def test_two_processes_of_one_host_fetch_a_version_once(
    db: Database, trainer: Host, other: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CHUNK_BYTES", 64)  # many chunks: the fetches overlap
    weights = {"w": np.arange(20_000, dtype=np.float32)}
    with db.session() as s:
        publish_version(s, trainer, "v1", arrays=weights)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    children = [
        context.Process(target=_fetch_in_child, args=(db.url, str(other.root), start, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0

    assert sorted([results.get(timeout=5), results.get(timeout=5)]) == [False, True]
    loaded = artifacts.load_artifact(other.models, "v1")
    np.testing.assert_array_equal(loaded.arrays["w"], weights["w"])
    assert sorted(p.name for p in other.models.iterdir()) == [".fetch-v1.lock", "v1"]


def test_prune_unpublishes_old_versions_but_never_the_active_one(
    db: Database, trainer: Host
) -> None:
    with db.session() as s:
        for version in ("v1", "v2", "v3"):
            publish_version(s, trainer, version)
        store.activate(s, "v1", NOW)  # rolled back to the oldest
        assert store.prune(s, 1, trainer.models, trainer.embeddings) == ["v2"]
    with db.session() as s:
        assert store.list_versions(s) == ["v1", "v3"]
        assert set(s.scalars(select(ModelChunkRow.version))) == {"v1", "v3"}
    assert artifacts.list_versions(trainer.models) == ["v1", "v3"]
    assert sorted(p.name for p in trainer.embeddings.iterdir()) == ["v1", "v3"]


def test_another_host_prunes_its_cache_when_it_fetches_a_new_version(
    db: Database, trainer: Host, other: Host
) -> None:
    with db.session() as s:
        publish_version(s, trainer, "v1")
    fetch(db, other, "v1")
    artifacts.write_artifact(other.models, {}, {}, version="v9-training-here")
    with db.session() as s:
        publish_version(s, trainer, "v2")
        publish_version(s, trainer, "v3")
        store.prune(s, 2, trainer.models, trainer.embeddings)

    fetch(db, other, "v3")

    # v1 is unpublished, so it goes; a version newer than every published one may be a
    # training still writing on this host, so it stays.
    assert artifacts.list_versions(other.models) == ["v3", "v9-training-here"]
    assert sorted(p.name for p in other.embeddings.iterdir()) == ["v3"]
