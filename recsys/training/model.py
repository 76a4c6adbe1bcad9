"""The trained model as the pipeline uses it: embedder, recommender component, embedding store.

Training writes an artifact (component arrays + the embedder's files) and an embedding
store for that version; ``load_active_model`` opens whatever version is active.
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
from recsys.training import artifacts


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
    # TF-IDF rows of papers already tokenised by this process, for reasons: a day's
    # candidates and a reader's history recur in every chunk, and tokenising their
    # abstracts again was most of the reasons' cost (0.3 s of 0.6 s per 1,000 digests).
    _tfidf_rows: dict[int, tuple[NDArray[np.int32], NDArray[np.float64]]] = field(
        default_factory=dict, repr=False
    )

    def paper_vectors(self, session: Session, paper_ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """Embeddings for ``paper_ids``: from the store, or computed for papers not yet in it.

        Papers ingested after training are embedded here in memory; the ``embed`` task is the
        one writer that appends them to the store, so worker processes never race on it.
        """
        out = np.zeros((len(paper_ids), self.embedder.dim), dtype=np.float32)
        if len(paper_ids) == 0:
            return out
        missing = set(self.store.missing(paper_ids).tolist())
        known = np.array([pid not in missing for pid in paper_ids.tolist()], dtype=bool)
        if known.any():
            out[known] = self.store.get(paper_ids[known])
        if missing:
            out[~known] = self.embedder.transform(paper_texts(session, paper_ids[~known]))
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


def embeddings_dir(data_dir: Path, version: str) -> Path:
    return data_dir / "embeddings" / version


def load_model(models_dir: Path, data_dir: Path, version: str) -> Model:
    """Open ``version``: its component state, its embedder and its embedding store."""
    art = artifacts.load_artifact(models_dir, version)
    # Refuses files or a neural model that differ from what the version was trained with.
    embedder = load_encoder(art.path / "embedder", art.manifest.get("embedder"))
    component = load_component(
        art.manifest["component"], art.arrays, art.manifest["component_config"]
    )
    store = EmbeddingStore(embeddings_dir(data_dir, version), embedder.dim)
    floor = art.manifest.get("reasons", {}).get("min_similarity", DEFAULT_FLOOR)
    return Model(version, embedder, component, store, reason_floor=float(floor))


def load_active_model(models_dir: Path, data_dir: Path) -> Model | None:
    """The active model, or None before the first training."""
    version = artifacts.active_version(models_dir)
    return None if version is None else load_model(models_dir, data_dir, version)
