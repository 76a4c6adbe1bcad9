"""Nightly training: fit the embedder on the corpus, fit the recommender, write and activate.

The artifact is written atomically (temporary folder, then rename) and the embedding store
for the new version is filled before the version is activated, so a worker never loads a
half-written model.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys import artifacts
from recsys.db.models import PaperRow, UserRow
from recsys.embeddings import EmbeddingStore, TfidfSvdEmbedder
from recsys.model import Model, embeddings_dir
from recsys.recommender import ContentProfile, PaperBlock, TrainingSnapshot, UserBlock
from recsys.scoring import UserContext, build_user_context
from recsys.settings import Settings


class TrainingError(RuntimeError):
    """Training cannot run (for example, there are no papers yet)."""


@dataclass(frozen=True)
class TrainReport:
    version: str
    n_papers: int
    n_users: int
    n_events: int
    embedding_dim: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def new_version(now: datetime) -> str:
    """A sortable, unique model version name."""
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def train(session: Session, settings: Settings, now: datetime, *, dim: int = 64) -> TrainReport:
    """Fit a new model version on everything in the database and activate it."""
    started = time.perf_counter()
    ids, texts, ages = _corpus(session, now)
    if len(ids) == 0:
        raise TrainingError("no papers to train on: run `paperboy ingest` first")
    version = new_version(now)
    embedder = TfidfSvdEmbedder(dim=dim).fit(texts)
    vectors = embedder.transform(texts)
    # The store is filled first: the snapshot below reads history embeddings from it.
    store = EmbeddingStore(embeddings_dir(settings.data_dir, version), embedder.dim)
    store.append(ids, vectors)
    model = Model(version=version, embedder=embedder, component=ContentProfile(), store=store)
    papers = PaperBlock(paper_ids=ids, embeddings=vectors, age_days=ages)
    user_ids = list(session.scalars(select(UserRow.id).order_by(UserRow.id)))
    users = _over_corpus(build_user_context(session, model, user_ids, now), papers)
    component = model.component.fit(TrainingSnapshot(users=users, papers=papers))
    arrays, config = component.get_state()
    manifest = {
        "created_at": now.isoformat(),
        "component": component.name,
        "component_config": config,
        "embedder": {"kind": "tfidf-svd", "dim": embedder.dim},
        "data": {"n_papers": len(ids), "n_users": len(user_ids), "n_events": len(users.event_user)},
    }
    artifacts.write_artifact(
        settings.models_dir,
        arrays,
        manifest,
        version=version,
        extra_dirs={"embedder": embedder.save},
    )
    artifacts.activate(settings.models_dir, version)
    return TrainReport(
        version=version,
        n_papers=len(ids),
        n_users=len(user_ids),
        n_events=len(users.event_user),
        embedding_dim=embedder.dim,
        seconds=round(time.perf_counter() - started, 3),
    )


def _corpus(
    session: Session, now: datetime
) -> tuple[NDArray[np.int64], list[str], NDArray[np.float32]]:
    rows = session.execute(
        select(
            PaperRow.id, PaperRow.title, PaperRow.abstract, PaperRow.published, PaperRow.created_at
        ).order_by(PaperRow.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    texts = [f"{r.title}. {r.abstract}" for r in rows]
    ages = np.array(
        [max((now - (r.published or r.created_at)).total_seconds(), 0) / 86400 for r in rows],
        dtype=np.float32,
    )
    return ids, texts, ages


def _over_corpus(context: UserContext, papers: PaperBlock) -> UserBlock:
    """Re-point the users' events at rows of the corpus, as ``TrainingSnapshot`` expects."""
    row_of = {int(pid): row for row, pid in enumerate(papers.paper_ids)}
    rows = np.array([row_of[int(pid)] for pid in context.history_ids], dtype=np.int32)
    block = context.block
    return replace(
        block,
        history_embeddings=papers.embeddings,
        event_item=rows[block.event_item] if len(rows) else block.event_item,
    )
