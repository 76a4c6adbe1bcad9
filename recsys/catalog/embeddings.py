"""Paper embeddings: the default TF-IDF + SVD embedder and the append-only embedding store.

Both persist only arrays and JSON (never pickle), so artifacts are safe to load and readable
by any numpy version.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer

_EMBEDDER_FORMAT = "tfidf-svd"
_EMBEDDER_VERSION = 1
_NGRAM_RANGE = (1, 2)
# scikit-learn's default token pattern, saved with the model so a library upgrade that
# changed the default could not silently change the embedding of the same text.
_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class TfidfSvdEmbedder:
    """TF-IDF over title and abstract reduced with truncated SVD, fit on the corpus (no download).

    TF-IDF uses sublinear term frequency, English stop words and unigrams plus bigrams; rows
    are L2-normalised before and after the SVD projection, so dot products are cosines.
    Fitting uses scikit-learn, but the fitted state is only a vocabulary, an idf vector and
    the SVD components, and one transform code path serves both a fitted and a loaded model,
    so a saved model embeds text exactly as it did before saving.

    Parameters
    ----------
    dim : int, default 64
        Requested output dimension; a small corpus may allow fewer (see :attr:`dim`).
    max_features : int, default 50_000
        Vocabulary size cap (most frequent terms kept).
    min_df : int, default 1
        Minimum number of documents a term must appear in.
    seed : int, default 0
        Seed of the randomised SVD.
    """

    def __init__(
        self, dim: int = 64, max_features: int = 50_000, min_df: int = 1, seed: int = 0
    ) -> None:
        if dim < 1 or max_features < 1 or min_df < 1:
            raise ValueError(
                f"dim, max_features and min_df must be >= 1, got {dim}, {max_features}, {min_df}"
            )
        self.requested_dim = dim
        self.max_features = max_features
        self.min_df = min_df
        self.seed = seed
        self._stop_words: tuple[str, ...] = tuple(sorted(ENGLISH_STOP_WORDS))
        self._vocabulary: list[str] | None = None
        self._idf: NDArray[np.float64] | None = None
        self._components: NDArray[np.float32] | None = None
        self._counter: CountVectorizer | None = None

    # --- fitting ------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> TfidfSvdEmbedder:
        """Learn the vocabulary, idf weights and SVD projection from a corpus.

        Parameters
        ----------
        texts : Sequence[str]
            One text per paper, usually :attr:`recsys.domain.Paper.text`.

        Returns
        -------
        TfidfSvdEmbedder
            ``self``, fitted.

        Raises
        ------
        ValueError
            If ``texts`` is empty or holds no usable term (only stop words, say).
        """
        if len(texts) == 0:
            raise ValueError("TfidfSvdEmbedder.fit needs at least one text")
        tfidf = TfidfVectorizer(
            sublinear_tf=True,
            stop_words=list(self._stop_words),
            ngram_range=_NGRAM_RANGE,
            token_pattern=_TOKEN_PATTERN,
            max_features=self.max_features,
            min_df=self.min_df,
        )
        # sklearn's matrix equals what tfidf computes (to round-off), and reusing it saves a
        # second tokenising pass. transform() itself always goes through tfidf, which is why
        # a saved and reloaded model embeds exactly as before.
        weights = tfidf.fit_transform(texts)
        by_column = sorted(tfidf.vocabulary_.items(), key=lambda item: item[1])
        self._set_state([term for term, _ in by_column], tfidf.idf_, None)
        self._components = self._fit_components(weights)
        return self

    def _fit_components(self, weights: sp.csr_matrix) -> NDArray[np.float32]:
        n_docs, n_terms = weights.shape
        # More components than documents or terms would only add directions the corpus
        # says nothing about, so the dimension shrinks to what the corpus allows.
        k = min(self.requested_dim, n_docs, n_terms)
        if n_terms == 1:  # TruncatedSVD needs two features; one term is its own axis
            return np.ones((1, 1), dtype=np.float32)
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=self.seed)
        svd.fit(weights)
        components: NDArray[np.float32] = svd.components_.astype(np.float32)
        return components

    # --- transforming -------------------------------------------------------------------
    def transform(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts.

        Parameters
        ----------
        texts : Sequence[str]
            Texts to embed.

        Returns
        -------
        NDArray[np.float32]
            ``(len(texts), dim)`` rows with unit L2 norm; a text with no known term gets a
            zero row (it carries no evidence, so it should score zero against everything).
        """
        components = self._require_fitted()
        if len(texts) == 0:
            return np.zeros((0, components.shape[0]), dtype=np.float32)
        projected = np.asarray(self.tfidf(texts) @ components.T, dtype=np.float64)
        return _normalise_rows(projected).astype(np.float32)

    def tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TfidfVectorizer's output (sublinear tf, idf, L2 rows), from the saved state alone.

        The space before the SVD: reasons judge closeness here (see
        :mod:`recsys.recommender.reasons`), where a shared rare term still counts."""
        assert self._counter is not None and self._idf is not None
        counts = self._counter.transform(texts).astype(np.float64).tocsr()
        counts.data = 1.0 + np.log(counts.data)
        weighted = sp.csr_matrix(counts @ sp.diags(self._idf))
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale) @ weighted)

    @property
    def dim(self) -> int:
        """Output dimension: ``min(requested dim, documents, terms)`` of the fitted corpus."""
        return int(self._require_fitted().shape[0])

    def _require_fitted(self) -> NDArray[np.float32]:
        if self._components is None:
            raise NotFittedError("TfidfSvdEmbedder is not fitted; call fit() or load() first")
        return self._components

    def _set_state(
        self,
        vocabulary: list[str],
        idf: NDArray[np.float64],
        components: NDArray[np.float32] | None,
    ) -> None:
        self._vocabulary = vocabulary
        self._idf = np.asarray(idf, dtype=np.float64)
        self._components = components
        # A CountVectorizer with a fixed vocabulary needs no fitting: it is the tokenizer
        # and counter, and tfidf applies the idf weights and norms the same way sklearn does.
        self._counter = CountVectorizer(
            vocabulary={term: i for i, term in enumerate(vocabulary)},
            stop_words=list(self._stop_words),
            ngram_range=_NGRAM_RANGE,
            token_pattern=_TOKEN_PATTERN,
        )

    # --- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the model as JSON and ``.npy`` files (no pickle).

        ``vocabulary.json`` (terms in column order), ``idf.npy``, ``components.npy`` and
        ``config.json``. Each file is written to a temporary name and renamed; the config is
        written last, so a directory with a config holds a complete model.

        Parameters
        ----------
        directory : Path
            Target directory; created if missing.
        """
        components = self._require_fitted()
        assert self._idf is not None
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(directory / "vocabulary.json", self._vocabulary)
        _write_npy(directory / "idf.npy", self._idf)
        _write_npy(directory / "components.npy", components)
        _write_json(directory / "config.json", self._config())

    def _config(self) -> dict[str, Any]:
        return {
            "format": _EMBEDDER_FORMAT,
            "version": _EMBEDDER_VERSION,
            "dim": self.requested_dim,
            "max_features": self.max_features,
            "min_df": self.min_df,
            "seed": self.seed,
            "ngram_range": list(_NGRAM_RANGE),
            "token_pattern": _TOKEN_PATTERN,
            "sublinear_tf": True,
            "stop_words": list(self._stop_words),
        }

    @classmethod
    def load(cls, directory: Path) -> TfidfSvdEmbedder:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        directory : Path
            Directory written by :meth:`save`.

        Returns
        -------
        TfidfSvdEmbedder
            The fitted model.

        Raises
        ------
        ValueError
            If the files are missing pieces, of another format, or inconsistent.
        """
        config = _read_json(directory / "config.json")
        if config.get("format") != _EMBEDDER_FORMAT or config.get("version") != _EMBEDDER_VERSION:
            raise ValueError(
                f"{directory / 'config.json'}: not a {_EMBEDDER_FORMAT} v{_EMBEDDER_VERSION} "
                f"model (format={config.get('format')!r}, version={config.get('version')!r})"
            )
        model = cls(config["dim"], config["max_features"], config["min_df"], config["seed"])
        model._stop_words = tuple(config["stop_words"])
        vocabulary = _read_json(directory / "vocabulary.json")
        idf = np.load(directory / "idf.npy", allow_pickle=False)
        components = np.load(directory / "components.npy", allow_pickle=False)
        _check_shapes(directory, vocabulary, idf, components)
        model._set_state(vocabulary, idf, components.astype(np.float32, copy=False))
        return model


def _check_shapes(directory: Path, vocabulary: Any, idf: NDArray[Any], comps: NDArray[Any]) -> None:
    n_terms = len(vocabulary)
    if idf.shape != (n_terms,) or comps.ndim != 2 or comps.shape[1] != n_terms:
        raise ValueError(
            f"{directory}: inconsistent model files: {n_terms} terms in vocabulary.json, "
            f"idf.npy shape {idf.shape}, components.npy shape {comps.shape}; re-save the model"
        )


def _normalise_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Zero rows stay zero instead of becoming NaN.
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# --- Embedding store ---------------------------------------------------------------------------
class EmbeddingStore:
    """Float32 rows keyed by paper id, memory-mapped for reading, append-only.

    Layout of ``directory``:

    - ``meta.json``: ``{"dim": ..., "dtype": "float32", "version": 1}``.
    - ``vectors.f32``: raw little-endian float32 rows, row ``r`` at byte ``r * dim * 4``.
    - ``ids.npy``: int64 paper id of each row, in row order. Its length is the row count.

    Crash safety: :meth:`append` writes and fsyncs the new rows first, then replaces
    ``ids.npy`` atomically (temporary file + ``os.replace``). A crash before the replace
    leaves orphan rows past the end, which nothing reads and the next append overwrites; it
    can never leave an id pointing at a missing row. The price is rewriting ``ids.npy`` on
    every append (8 bytes per paper), which is small for the batched appends of an ingest
    run.

    Several processes of one host may append at once (the embed task, and every worker
    embedding papers its host's store lacks): :meth:`append` holds an exclusive ``flock`` on
    ``.append.lock`` and re-reads the store before writing, so no two appends interleave
    and none overwrites rows another just added. A reader sees the rows present when it
    opened the store, last appended or last called :meth:`refresh`.

    Parameters
    ----------
    directory : Path
        Store directory; created, with its ``meta.json``, if missing.
    dim : int
        Row dimension; must match an existing store's.
    """

    _VERSION = 1

    def __init__(self, directory: Path, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.directory = directory
        self.dim = dim
        self._meta_path = directory / "meta.json"
        self._ids_path = directory / "ids.npy"
        self._vectors_path = directory / "vectors.f32"
        directory.mkdir(parents=True, exist_ok=True)
        self._check_or_write_meta()
        self.refresh()

    def _check_or_write_meta(self) -> None:
        if not self._meta_path.exists():
            meta = {"dim": self.dim, "dtype": "float32", "version": self._VERSION}
            _write_json(self._meta_path, meta)
            return
        meta = _read_json(self._meta_path)
        if meta.get("dim") != self.dim or meta.get("dtype") != "float32":
            raise ValueError(
                f"{self._meta_path}: store holds {meta.get('dtype')} rows of dim "
                f"{meta.get('dim')}, not float32 of dim {self.dim}; open it with its own dim "
                "or use a new directory for the new embedder"
            )

    def refresh(self) -> None:
        """Re-read ``ids.npy`` and re-map the vectors, to see another process's appends."""
        ids = np.zeros(0, dtype=np.int64)
        if self._ids_path.exists():
            ids = np.load(self._ids_path, allow_pickle=False).astype(np.int64, copy=False)
        row_bytes = self.dim * 4
        size = self._vectors_path.stat().st_size if self._vectors_path.exists() else 0
        if size < ids.size * row_bytes:
            raise ValueError(
                f"{self._vectors_path}: {size // row_bytes} rows on disk but ids.npy lists "
                f"{ids.size}; the store is damaged, rebuild it by re-embedding the papers"
            )
        self._ids = ids
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._rows: NDArray[np.float32] | None = None
        if ids.size:
            self._rows = np.memmap(
                self._vectors_path, dtype="<f4", mode="r", shape=(ids.size, self.dim)
            )

    # --- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._ids.size)

    def ids(self) -> NDArray[np.int64]:
        """Paper ids in row (append) order.

        Returns
        -------
        NDArray[np.int64]
            A copy of the ids.
        """
        return self._ids.copy()

    def missing(self, paper_ids: ArrayLike) -> NDArray[np.int64]:
        """The given ids that have no row, in first-seen order, without repeats.

        Parameters
        ----------
        paper_ids : ArrayLike
            Paper ids to check.

        Returns
        -------
        NDArray[np.int64]
            Ids to embed and append.
        """
        ids = _as_ids(paper_ids)
        absent = ids[self._lookup(ids) < 0]
        _, first = np.unique(absent, return_index=True)
        return absent[np.sort(first)]

    def get(self, paper_ids: ArrayLike) -> NDArray[np.float32]:
        """Rows for the given ids, in the given order.

        Parameters
        ----------
        paper_ids : ArrayLike
            Paper ids, each already appended.

        Returns
        -------
        NDArray[np.float32]
            ``(len(paper_ids), dim)`` array (a copy, not a view of the file).

        Raises
        ------
        KeyError
            If any id has no row; the message lists them.
        """
        ids = _as_ids(paper_ids)
        rows = self._lookup(ids)
        if (rows < 0).any():
            absent = np.unique(ids[rows < 0])
            shown = ", ".join(str(i) for i in absent[:10]) + (" ..." if absent.size > 10 else "")
            raise KeyError(
                f"{absent.size} paper id(s) not in embedding store {self.directory}: [{shown}]; "
                "embed and append them first"
            )
        if self._rows is None:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._rows[rows], dtype=np.float32)

    def _lookup(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row of each id, or -1 when absent."""
        if self._sorted.size == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, ids), self._sorted.size - 1)
        return np.where(self._sorted[pos] == ids, self._order[pos], -1)

    # --- writing ------------------------------------------------------------------------
    def append(self, paper_ids: ArrayLike, vectors: ArrayLike) -> None:
        """Append rows for ids not yet present; ids already present are skipped.

        Skipping makes a retried embed task harmless (idempotent).

        Parameters
        ----------
        paper_ids : ArrayLike
            ``(n,)`` distinct integer paper ids.
        vectors : ArrayLike
            ``(n, dim)`` finite values castable to float32.

        Raises
        ------
        ValueError
            On a shape mismatch, repeated ids, non-numeric or non-finite values.
        """
        ids = _as_ids(paper_ids)
        rows = self._check_vectors(vectors, ids.size)
        _, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"paper_ids repeat: {np.unique(ids)[counts > 1][:10].tolist()}")
        with open(self.directory / ".append.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.refresh()  # another process may have appended since we last looked
                new = self._lookup(ids) < 0
                if new.any():
                    self._write(ids[new], rows[new])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _check_vectors(self, vectors: ArrayLike, n: int) -> NDArray[np.float32]:
        array = np.asarray(vectors)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"vectors must be numeric, got dtype {array.dtype}")
        if array.shape != (n, self.dim):
            raise ValueError(
                f"vectors must have shape ({n}, {self.dim}) for {n} ids, got {array.shape}"
            )
        rows = array.astype(np.float32)
        if not np.isfinite(rows).all():
            raise ValueError("vectors contain NaN or infinite values (after casting to float32)")
        return rows

    def _write(self, ids: NDArray[np.int64], rows: NDArray[np.float32]) -> None:
        start = self._ids.size * self.dim * 4
        self._vectors_path.touch(exist_ok=True)
        # Not append mode: it would write after orphan rows instead of over them.
        with open(self._vectors_path, "r+b") as f:
            # Cut orphan rows a crashed append may have left, then write after the last row.
            f.truncate(start)
            f.seek(start)
            f.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
            f.flush()
            os.fsync(f.fileno())
        _write_npy(self._ids_path, np.concatenate([self._ids, ids]))
        self.refresh()


def _as_ids(paper_ids: ArrayLike) -> NDArray[np.int64]:
    ids = np.asarray(paper_ids)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"paper_ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    return ids.astype(np.int64, copy=False)


# --- Files ----------------------------------------------------------------------------------
def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    _commit(tmp, path)


def _write_npy(path: Path, array: NDArray[Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)
    _commit(tmp, path)


def _commit(tmp: Path, path: Path) -> None:
    """fsync then rename, so the final name only ever points at complete contents."""
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing; was the directory written by save()?") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
