"""The TF-IDF + SVD embedder and the append-only embedding store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from recsys.catalog.embeddings import EmbeddingStore, TfidfSvdEmbedder
from recsys.synth import World, generate_world

NOW = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(10, 300, n_topics=12, seed=7, now=NOW)


@pytest.fixture(scope="module")
def texts(world: World) -> list[str]:
    return [p.text for p in world.papers]


@pytest.fixture(scope="module")
def embedder(texts: list[str]) -> TfidfSvdEmbedder:
    return TfidfSvdEmbedder(dim=64).fit(texts)


# --- embedder -------------------------------------------------------------------------------
def test_rows_are_unit_float32_of_the_fitted_dim(
    embedder: TfidfSvdEmbedder, texts: list[str]
) -> None:
    vectors = embedder.transform(texts)
    assert embedder.dim == 64
    assert vectors.shape == (300, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_papers_of_a_topic_are_closer_than_papers_of_different_topics(
    embedder: TfidfSvdEmbedder, texts: list[str], world: World
) -> None:
    vectors = embedder.transform(texts)
    cosine = vectors @ vectors.T
    same = world.paper_topics[:, None] == world.paper_topics[None, :]
    np.fill_diagonal(same, False)
    different = world.paper_topics[:, None] != world.paper_topics[None, :]
    assert cosine[same].mean() > cosine[different].mean() + 0.2
    np.fill_diagonal(cosine, -np.inf)
    nearest_topic = world.paper_topics[cosine.argmax(axis=1)]
    assert (nearest_topic == world.paper_topics).mean() > 0.8


def test_a_text_without_known_terms_embeds_to_zero(embedder: TfidfSvdEmbedder) -> None:
    vectors = embedder.transform(["zyxxy quuxly", "", "the and of"])
    assert vectors.shape == (3, 64)
    assert not vectors.any()


def test_no_texts_give_an_empty_matrix(embedder: TfidfSvdEmbedder) -> None:
    assert embedder.transform([]).shape == (0, 64)


def test_save_and_load_embed_identically(
    embedder: TfidfSvdEmbedder, texts: list[str], tmp_path: Path
) -> None:
    embedder.save(tmp_path / "model")
    loaded = TfidfSvdEmbedder.load(tmp_path / "model")
    queries = [*texts[:50], "graph attention for protein folding", "unknown words only"]
    np.testing.assert_array_equal(loaded.transform(queries), embedder.transform(queries))
    assert loaded.dim == embedder.dim
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert names == {"vocabulary.json", "idf.npy", "components.npy", "config.json"}


def test_load_rejects_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config.json"):
        TfidfSvdEmbedder.load(tmp_path)


def test_load_rejects_inconsistent_files(embedder: TfidfSvdEmbedder, tmp_path: Path) -> None:
    embedder.save(tmp_path)
    vocabulary = json.loads((tmp_path / "vocabulary.json").read_text())
    (tmp_path / "vocabulary.json").write_text(json.dumps(vocabulary[:-1]))
    with pytest.raises(ValueError, match="inconsistent"):
        TfidfSvdEmbedder.load(tmp_path)


def test_a_tiny_corpus_shrinks_the_dimension(texts: list[str]) -> None:
    tiny = TfidfSvdEmbedder(dim=64).fit(texts[:5])
    assert tiny.dim == 5
    vectors = tiny.transform(texts[:5])
    assert vectors.shape == (5, 5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_one_term_corpus_embeds_in_one_dimension() -> None:
    single = TfidfSvdEmbedder().fit(["graphs", "Graphs!"])
    assert single.dim == 1
    np.testing.assert_array_equal(single.transform(["graphs", "cats"]), [[1.0], [0.0]])


def test_fit_rejects_an_empty_corpus() -> None:
    with pytest.raises(ValueError, match="at least one text"):
        TfidfSvdEmbedder().fit([])


def test_an_unfitted_embedder_says_to_fit_or_load() -> None:
    with pytest.raises(NotFittedError, match=r"fit\(\) or load\(\)"):
        TfidfSvdEmbedder().transform(["text"])


# --- store ------------------------------------------------------------------------------------
def _rows(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_store_returns_appended_rows_by_id(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    rows = _rows(3)
    store.append(np.array([10, 20, 30]), rows)
    assert len(store) == 3
    np.testing.assert_array_equal(store.ids(), [10, 20, 30])
    got = store.get(np.array([30, 10]))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, rows[[2, 0]])


def test_store_lists_missing_ids_once_in_order(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    assert store.missing(np.array([3, 1])).tolist() == [3, 1]
    store.append(np.array([1, 2]), _rows(2))
    assert store.missing(np.array([5, 1, 3, 5, 2])).tolist() == [5, 3]


def test_appending_present_ids_again_changes_nothing(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    first = _rows(2, seed=1)
    store.append(np.array([1, 2]), first)
    store.append(np.array([2, 3]), _rows(2, seed=2))
    assert store.ids().tolist() == [1, 2, 3]
    np.testing.assert_array_equal(store.get(np.array([1, 2])), first)


def test_a_reopened_store_keeps_its_rows(tmp_path: Path) -> None:
    rows = _rows(5)
    EmbeddingStore(tmp_path, dim=4).append(np.arange(5), rows)
    reopened = EmbeddingStore(tmp_path, dim=4)
    np.testing.assert_array_equal(reopened.get(np.arange(5)), rows)
    reopened.append(np.array([9]), _rows(1, seed=9))
    assert len(EmbeddingStore(tmp_path, dim=4)) == 6


def test_refresh_sees_appends_made_through_another_handle(tmp_path: Path) -> None:
    reader = EmbeddingStore(tmp_path, dim=4)
    EmbeddingStore(tmp_path, dim=4).append(np.array([7]), _rows(1))
    assert len(reader) == 0
    reader.refresh()
    assert reader.ids().tolist() == [7]


def test_an_append_through_a_stale_handle_keeps_the_rows_another_process_added(
    tmp_path: Path,
) -> None:
    # Two workers of one host, each with the store open since before the other appended.
    first, second = EmbeddingStore(tmp_path, dim=4), EmbeddingStore(tmp_path, dim=4)
    theirs, mine = _rows(2, seed=1), _rows(2, seed=2)
    first.append(np.array([1, 2]), theirs)
    second.append(np.array([2, 3]), mine)  # its view still has no rows

    reopened = EmbeddingStore(tmp_path, dim=4)
    assert reopened.ids().tolist() == [1, 2, 3]  # 2 once, as first appended it
    np.testing.assert_array_equal(reopened.get(np.array([1, 2, 3])), [*theirs, mine[1]])


def test_get_names_the_missing_ids(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    store.append(np.array([1]), _rows(1))
    with pytest.raises(KeyError, match=r"2 paper id\(s\).*\[4, 5\]"):
        store.get(np.array([1, 5, 4]))


def test_get_on_an_empty_store_raises_for_ids_and_is_empty_otherwise(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    assert store.get(np.array([], dtype=np.int64)).shape == (0, 4)
    with pytest.raises(KeyError):
        store.get(np.array([1]))


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.array([1, 2]), np.zeros((2, 3)), "shape"),
        (np.array([1, 2]), np.zeros((3, 4)), "shape"),
        (np.array([[1, 2]]), np.zeros((2, 4)), "1-D integer"),
        (np.array([1.5, 2.5]), np.zeros((2, 4)), "1-D integer"),
        (np.array([1, 2]), np.full((2, 4), "x"), "numeric"),
        (np.array([1, 2]), np.full((2, 4), np.nan), "NaN"),
        (np.array([1, 1]), np.zeros((2, 4)), "repeat"),
    ],
)
def test_append_rejects_bad_input(
    tmp_path: Path, ids: np.ndarray, vectors: np.ndarray, message: str
) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    with pytest.raises(ValueError, match=message):
        store.append(ids, vectors)
    assert len(store) == 0


def test_append_casts_float64_to_float32(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    store.append(np.array([1]), np.ones((1, 4), dtype=np.float64))
    assert store.get(np.array([1])).dtype == np.float32


def test_opening_with_another_dim_is_refused(tmp_path: Path) -> None:
    EmbeddingStore(tmp_path, dim=4)
    with pytest.raises(ValueError, match="dim 4"):
        EmbeddingStore(tmp_path, dim=8)


def test_orphan_rows_from_a_crashed_append_are_overwritten(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path, dim=4)
    store.append(np.array([1]), _rows(1, seed=1))
    # A crash after writing rows but before ids.npy was replaced leaves orphan rows.
    with (tmp_path / "vectors.f32").open("ab") as f:
        f.write(_rows(3, seed=99).tobytes())
    reopened = EmbeddingStore(tmp_path, dim=4)
    assert len(reopened) == 1
    fresh = _rows(1, seed=2)
    reopened.append(np.array([2]), fresh)
    np.testing.assert_array_equal(EmbeddingStore(tmp_path, dim=4).get(np.array([2])), fresh)
    assert (tmp_path / "vectors.f32").stat().st_size == 2 * 4 * 4


def test_ids_pointing_past_the_rows_are_reported(tmp_path: Path) -> None:
    EmbeddingStore(tmp_path, dim=4).append(np.array([1, 2]), _rows(2))
    with (tmp_path / "vectors.f32").open("r+b") as f:
        f.truncate(4 * 4)
    with pytest.raises(ValueError, match="damaged"):
        EmbeddingStore(tmp_path, dim=4)
