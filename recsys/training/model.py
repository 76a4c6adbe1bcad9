"""The trained model as the pipeline uses it: embedder, recommender component, embedding store.

Training writes an artifact (component arrays + the embedder's files) and an embedding
store for that version and publishes both (``recsys.training.store``);
``load_active_model`` opens whatever version the database says is active, fetching it into
this host's cache first if needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.catalog.embeddings import EmbeddingStore
from recsys.catalog.encoders import PaperEncoder, load_encoder
from recsys.db.models import PaperRow
from recsys.recommender import Component, load_component
from recsys.recommender.reasons import DEFAULT_FLOOR
from recsys.recommender.relevance import Bar
from recsys.training import artifacts, store


@dataclass
class Model:
    """A loaded, active model version."""

    version: str
    embedder: PaperEncoder
    component: Component
    store: EmbeddingStore
    # Cosine a cited paper or interest must reach for a reason to cite it
    # (recsys.recommender.reasons); measured on the corpus at training time.
    reason_floor: float = DEFAULT_FLOOR
    # The base relevance bar (recsys.recommender.relevance), calibrated at training time.
    bar: Bar = field(default_factory=lambda: Bar.from_manifest(None))
    # TF-IDF rows of papers already tokenised by this process, for reasons: a day's
    # candidates and a reader's history recur in every chunk, and tokenising their
    # abstracts again was most of the reasons' cost (0.3 s of 0.6 s per 1,000 digests).
    _tfidf_rows: dict[int, tuple[NDArray[np.int32], NDArray[np.float64]]] = field(
        default_factory=dict, repr=False
    )

    def paper_vectors(self, session: Session, paper_ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """Embeddings for ``paper_ids``: from the store, or computed and appended to it.

        Papers ingested after training are embedded here from the version's encoder and
        appended to this host's store. Hosts do not share these rows through the database:
        the encoder is part of the published version and its transform is deterministic
        (a fixed vocabulary, idf and projection), so every host computes the same rows from
        the paper text the database already holds, once per host, and no second
        publishing protocol is needed for rows added after training. The ``embed`` task
        warms the store of the host it runs on; the others catch up here.
        """
        out = np.zeros((len(paper_ids), self.embedder.dim), dtype=np.float32)
        if len(paper_ids) == 0:
            return out
        missing = set(self.store.missing(paper_ids).tolist())
        known = np.array([pid not in missing for pid in paper_ids.tolist()], dtype=bool)
        if known.any():
            out[known] = self.store.get(paper_ids[known])
        if missing:
            fresh = np.array(sorted(missing), dtype=np.int64)
            vectors = self.embedder.transform(paper_texts(session, fresh))
            self.store.append(fresh, vectors)
            out[~known] = self.store.get(paper_ids[~known])
        return out

    def paper_tfidf(self, session: Session, paper_ids: NDArray[np.int64]) -> sp.csr_matrix:
        """Unit-norm TF-IDF rows of ``paper_ids`` (title and abstract), cached per paper."""
        ids = [int(i) for i in paper_ids]
        new = sorted(set(ids) - self._tfidf_rows.keys())
        if new:
            if len(self._tfidf_rows) + len(new) > TFIDF_CACHE_ROWS:
                self._tfidf_rows.clear()  # a long-lived worker: start afresh, never grow
            rows = self.embedder.tfidf(paper_texts(session, np.array(new, dtype=np.int64)))
            for n, paper_id in enumerate(new):
                start, end = rows.indptr[n], rows.indptr[n + 1]
                self._tfidf_rows[paper_id] = (rows.indices[start:end], rows.data[start:end])
        return _stack([self._tfidf_rows[i] for i in ids], self.embedder.tfidf([""]).shape[1])


TFIDF_CACHE_ROWS = 200_000  # about 40 MB of sparse rows at ~25 terms per abstract


def _stack(rows: list[tuple[NDArray[np.int32], NDArray[np.float64]]], width: int) -> sp.csr_matrix:
    """One CSR matrix from cached rows (sp.vstack of thousands of 1-row matrices is slow)."""
    lengths = [len(indices) for indices, _ in rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if not rows:
        return sp.csr_matrix((0, width))
    indices = np.concatenate([indices for indices, _ in rows])
    data = np.concatenate([data for _, data in rows])
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), width))


def paper_texts(session: Session, paper_ids: NDArray[np.int64]) -> list[str]:
    """Title and abstract of each paper, in the order of ``paper_ids``."""
    ids = [int(i) for i in paper_ids]
    rows = session.execute(
        select(PaperRow.id, PaperRow.title, PaperRow.abstract).where(PaperRow.id.in_(ids))
    ).all()
    by_id = {pid: f"{title}. {abstract}" for pid, title, abstract in rows}
    return [by_id[i] for i in ids]


def embeddings_root(data_dir: Path) -> Path:
    """Where this host keeps the embedding stores, one folder per version."""
    return data_dir / "embeddings"


def embeddings_dir(data_dir: Path, version: str) -> Path:
    return embeddings_root(data_dir) / version


def load_model(models_dir: Path, data_dir: Path, version: str) -> Model:
    """Open ``version`` from this host's cache: its component state, embedder and store."""
    art = artifacts.load_artifact(models_dir, version)
    # Refuses files or a neural model that differ from what the version was trained with.
    embedder = load_encoder(art.path / "embedder", art.manifest.get("embedder"))
    component = load_component(
        art.manifest["component"], art.arrays, art.manifest["component_config"]
    )
    vectors = EmbeddingStore(embeddings_dir(data_dir, version), embedder.dim)
    floor = art.manifest.get("reasons", {}).get("min_similarity", DEFAULT_FLOOR)
    bar = Bar.from_manifest(art.manifest.get("bar"))
    return Model(version, embedder, component, vectors, reason_floor=float(floor), bar=bar)


def fetch_model(session: Session, models_dir: Path, data_dir: Path, version: str) -> Model:
    """Open a published ``version``, fetching it into this host's cache if it is not there.

    Raises
    ------
    FileNotFoundError
        If the version is neither cached nor published.
    recsys.training.store.StoreError
        If the published copy is incomplete or corrupt (the message names the chunk).
    """
    store.ensure_cached(session, version, models_dir, embeddings_root(data_dir))
    return load_model(models_dir, data_dir, version)


def load_active_model(session: Session, models_dir: Path, data_dir: Path) -> Model | None:
    """The active model (fetched if this host lacks it), or None before the first training."""
    version = store.active_version(session)
    return None if version is None else fetch_model(session, models_dir, data_dir, version)
