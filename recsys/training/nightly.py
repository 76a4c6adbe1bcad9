"""Nightly training: fit the embedder on the corpus, fit the recommender, judge, write, activate.

The new version is activated only if it passes the guard-rail (``recsys.training.guardrail``)
against the active one; a refused version is written, inactive, with the reason.

The artifact is written atomically (temporary folder, then rename) and the embedding store
for the new version is filled before the version is activated, so a worker never loads a
half-written model.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.catalog.embeddings import EmbeddingStore
from recsys.catalog.encoders import PaperEncoder
from recsys.db.locks import try_exclusive
from recsys.db.models import PaperRow, UserRow
from recsys.digests.scoring import UserContext, build_user_context
from recsys.progress import Progress, no_progress
from recsys.recommender import Component, ContentProfile, PaperBlock, TrainingSnapshot, UserBlock
from recsys.recommender.fitting import fit_hybrid
from recsys.recommender.reasons import NEIGHBOUR_RANK, neighbour_similarity
from recsys.recommender.relevance import training_bar
from recsys.settings import Settings
from recsys.training import artifacts, guardrail
from recsys.training import store as shared_store
from recsys.training.model import Model, embeddings_dir, embeddings_root, load_active_model


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
    # Whether the guard-rail let the version be activated, and why (recsys.training.guardrail).
    activated: bool = True
    reason: str = ""
    guardrail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


TRAINING_LOCK = "paperboy-training"
log = logging.getLogger(__name__)


def train_exclusively(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    only_if_missing: bool = False,
    progress: Progress = no_progress,
) -> TrainReport | None:
    """Train unless another training holds the lock, then prune old versions.

    Returns None, having done nothing, when another process is training or (with
    ``only_if_missing``) when a model is already active or there are no papers yet.
    """
    with try_exclusive(session, TRAINING_LOCK) as held:
        if not held:
            return None
        if only_if_missing and not _needs_first_model(session, settings):
            return None
        report = train(session, settings, now, progress=progress)
        prune_models(session, settings)
        return report


def _needs_first_model(session: Session, settings: Settings) -> bool:
    if shared_store.active_version(session) is not None:
        return False
    return session.scalar(select(PaperRow.id).limit(1)) is not None


def prune_models(session: Session, settings: Settings) -> list[str]:
    """Keep the newest ``settings.keep_models`` published versions (and the active one);
    unpublish the rest, drop them from this host's cache with their embedding stores, and
    delete what killed trainings left. Hold the lock."""
    artifacts.remove_leftovers(settings.models_dir)
    return shared_store.prune(
        session, settings.keep_models, settings.models_dir, embeddings_root(settings.data_dir)
    )


def new_version(now: datetime) -> str:
    """A sortable, unique model version name."""
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


Fitter = Callable[[TrainingSnapshot, Progress], tuple[Component, dict[str, Any]]]


def train(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    dim: int = 64,
    progress: Progress = no_progress,
    fit: Fitter | None = None,
) -> TrainReport:
    """Fit a new model version on everything in the database; activate it if it passes the
    guard-rail (``recsys.training.guardrail``) against the active one.

    A refused version is written all the same, with the verdict in its manifest
    (``guardrail``), so an operator can read why and still activate it by hand
    (``paperboy models activate VERSION``). ``progress(stage, done, total)`` is called as the
    components are fitted; ``fit`` replaces :func:`fit_recommender` (tests give a bad one).
    """
    started = time.perf_counter()
    ids, texts, ages = _corpus(session, now)
    if len(ids) == 0:
        raise TrainingError("no papers to train on: run `paperboy ingest` first")
    version = new_version(now)
    embedder = PaperEncoder.from_setting(settings.embedder, tfidf_dim=dim).fit(texts)
    vectors = embedder.transform_papers(ids, texts, neural_cache_dir(settings))
    # The store is filled first: the snapshot below reads history embeddings from it.
    store = EmbeddingStore(embeddings_dir(settings.data_dir, version), embedder.dim)
    store.append(ids, vectors)
    floor = neighbour_similarity(embedder.tfidf(texts))
    model = Model(version, embedder, ContentProfile(), store, reason_floor=floor)
    papers = PaperBlock(paper_ids=ids, embeddings=vectors, age_days=ages)
    user_ids = list(session.scalars(select(UserRow.id).order_by(UserRow.id)))
    users = _over_corpus(build_user_context(session, model, user_ids, now), papers)
    component, blend = (fit or fit_recommender)(
        TrainingSnapshot(users=users, papers=papers), progress
    )
    model.component = component
    # The relevance bar (issue 14): calibrated on held-out clicks, else the stated floor. Set
    # before judging, so the guard-rail ranks the candidate as workers will.
    model.bar = training_bar(users, papers)
    verdict = guardrail.judge(
        session, settings, model, _active(session, settings), now, (users, papers)
    )
    arrays, config = component.get_state()
    data = {"n_papers": len(ids), "n_users": len(user_ids), "n_events": len(users.event_user)}
    manifest = {
        "created_at": now.isoformat(),
        "component": component.name,
        "component_config": config,
        "blend": blend,
        "embedder": embedder.describe(),
        "reasons": {"min_similarity": floor, "space": "tfidf", "neighbour_rank": NEIGHBOUR_RANK},
        "data": data,
        "bar": model.bar.as_manifest(),
        "guardrail": verdict.as_dict(),
    }
    artifacts.write_artifact(
        settings.models_dir,
        arrays,
        manifest,
        version=version,
        extra_dirs={"embedder": embedder.save},
    )
    # Published in the caller's transaction: other hosts see the version when it commits.
    vectors_dir = embeddings_dir(settings.data_dir, version)
    shared_store.publish(session, version, settings.models_dir / version, vectors_dir, now)
    _activate_if_passed(session, version, verdict, now)
    return TrainReport(
        version=version,
        **data,
        embedding_dim=embedder.dim,
        seconds=round(time.perf_counter() - started, 3),
        activated=verdict.passed,
        reason=verdict.reason,
        guardrail=verdict.as_dict(),
    )


def neural_cache_dir(settings: Settings) -> Path:
    """Neural rows kept across versions (outside ``embeddings/``, which pruning sweeps)."""
    return settings.data_dir / "neural-cache"


def _active(session: Session, settings: Settings) -> Model | None:
    """The model to beat; None (so the candidate is judged as a first model) when there is
    none, or when the active one cannot be loaded: a broken active model must not keep a
    sound new one out."""
    try:
        return load_active_model(session, settings.models_dir, settings.data_dir)
    except (artifacts.ArtifactError, shared_store.StoreError, FileNotFoundError) as exc:
        log.warning("guard-rail: the active model cannot be loaded (%s); judging as first", exc)
        return None


def _activate_if_passed(
    session: Session, version: str, verdict: guardrail.Verdict, now: datetime
) -> None:
    if verdict.passed:
        shared_store.activate(session, version, now)
        log.info("model %s activated: %s", version, verdict.reason)
    else:
        log.warning(
            "model %s trained but NOT activated: %s (activate it by hand with "
            "`paperboy models activate %s`)",
            version,
            verdict.reason,
            version,
        )


def fit_recommender(
    snapshot: TrainingSnapshot, progress: Progress = no_progress
) -> tuple[Component, dict[str, Any]]:
    """The hybrid with validated blend weights, or the content profile before any click.

    Collaborative components (ALS, LightFM, popularity) have nothing to learn from a
    snapshot without a single positive event, so until the first click or "more like
    this" the content profile (interests and nothing else) ranks alone.

    Returns
    -------
    (Component, dict)
        The fitted recommender and a description of its blend for the manifest.
    """
    if not (snapshot.users.event_weight > 0).any():
        return ContentProfile().fit(snapshot), {"source": "content only: no positive events yet"}
    fitted = fit_hybrid(snapshot, progress=progress)
    names, values = fitted.hybrid.component_names, map(float, fitted.hybrid.weights)
    weights = dict(zip(names, values, strict=True))
    return fitted.hybrid, {
        "weights": weights,
        "source": fitted.weight_source,
        "n_validation_users": fitted.n_validation_users,
        "seconds": fitted.seconds,
    }


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
    block = context.block
    assert block.history_ids is not None  # build_user_context always names the history
    rows = np.array([row_of[int(pid)] for pid in block.history_ids], dtype=np.int32)
    return replace(
        block,
        history_embeddings=papers.embeddings,
        history_ids=papers.paper_ids,
        event_item=rows[block.event_item] if len(rows) else block.event_item,
    )
