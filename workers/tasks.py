"""Thin Celery tasks: parse ids, call a plain ``recsys`` function, enqueue the next step.

Each task enqueues follow-up work only after its transaction has committed, so a follow-up
never runs against rows that are not there yet.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from pathlib import Path

from celery import Task

from recsys import catalog, digests, scoring, sending, training
from recsys.embeddings import EmbeddingStore
from recsys.model import embeddings_dir
from recsys.settings import get_settings
from workers import runtime
from workers.app import app

log = logging.getLogger(__name__)


@app.task(name="paperboy.ingest")
def ingest(paths: list[str]) -> dict[str, object]:
    """Ingest files readable by the worker, then embed what is new."""
    with runtime.database().session() as session:
        report = catalog.ingest_files(session, [Path(p) for p in paths], runtime.now())
    if report.new:
        embed.delay()
    return report.as_dict()


@app.task(name="paperboy.embed")
def embed() -> int:
    """Append embeddings of papers the active model's store does not have yet."""
    model = runtime.active_model()
    if model is None:
        return 0
    with runtime.database().session() as session:
        ids = catalog.all_paper_ids(session)
        missing = model.store.missing(ids)
        vectors = model.paper_vectors(session, missing)
    EmbeddingStore(
        embeddings_dir(get_settings().data_dir, model.version), model.embedder.dim
    ).append(missing, vectors)
    return len(missing)


@app.task(name="paperboy.train")
def train() -> dict[str, object]:
    """Fit and activate a new model version."""
    with runtime.database().session() as session:
        report = training.train(session, get_settings(), runtime.now())
    return report.as_dict()


@app.task(name="paperboy.plan")
def plan() -> int:
    """Plan digests for every due user and fan the scoring out in chunks."""
    with runtime.database().session() as session:
        ids = digests.plan_due(session, runtime.now())
    size = get_settings().score_chunk_size
    for start in range(0, len(ids), size):
        score.delay(ids[start : start + size])
    return len(ids)


@app.task(name="paperboy.score")
def score(digest_ids: list[int]) -> int:
    """Rank a chunk of planned digests and enqueue the sends."""
    model = runtime.active_model()
    if model is None:
        log.warning("no active model: %d digests stay planned until training runs", len(digest_ids))
        return 0
    lookback = timedelta(days=get_settings().candidate_lookback_days)
    with runtime.database().session() as session:
        ranked = scoring.rank_digests(session, digest_ids, model, runtime.now(), lookback=lookback)
    for digest_id in ranked:
        send.delay(digest_id)
    return len(ranked)


@app.task(name="paperboy.send", bind=True, max_retries=8)
def send(self: Task, digest_id: int) -> str:
    """Send one digest; transient failures retry with exponential backoff and jitter."""
    result = sending.send_digest(
        runtime.database(), runtime.backend(), get_settings(), digest_id, runtime.now()
    )
    if result.outcome is sending.Outcome.RETRY:
        backoff = min(2**self.request.retries, 300) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=max(backoff, result.retry_after_s or 0))
    return result.outcome.value
