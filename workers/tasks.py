"""Thin Celery tasks: parse ids, call a plain ``recsys`` function, enqueue the next step.

Each task enqueues follow-up work only after its transaction has committed, so a follow-up
never runs against rows that are not there yet. Every task is idempotent (the outbox row's
status decides what is left to do), which is what makes ``acks_late`` redelivery and the
sweep's re-enqueueing safe.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from celery import Task

from recsys.catalog.harvest.config import SourceConfig, SourcesError, configured_sources
from recsys.catalog.harvest.run import due_sources, options_from_settings, select_sources
from recsys.catalog.harvest.run import harvest as harvest_sources
from recsys.catalog.harvest.state import states as harvest_states
from recsys.catalog.papers import all_paper_ids, ingest_files
from recsys.delivery import BatchEmailBackend
from recsys.digests import outbox, reconcile, scoring, sending
from recsys.digests.schedule import SchedulePolicy
from recsys.online.experiments import RankingDefaults
from recsys.settings import Settings, get_settings
from recsys.training import nightly
from workers import runtime
from workers.app import app, broker_lost_its_queues

log = logging.getLogger(__name__)
MAX_WAITING_AFTER_TRAINING = 100_000  # planned digests a new model picks up at once

MAX_PLAN_BATCHES = 1000  # of digests.PLAN_BATCH users each: ten million users per run
MAX_BACKOFF_S = 300.0
MAX_RETRY_WAIT_S = 600.0
# How long digests out of retries rest before the sweep tries them again.
HAND_BACK_PAUSE_S = 60.0


@app.task(name="paperboy.ingest")
def ingest(paths: list[str]) -> dict[str, object]:
    """Ingest files readable by the worker, then embed what is new."""
    with runtime.database().session() as session:
        report = ingest_files(session, [Path(p) for p in paths], runtime.now())
    if report.new:
        embed.delay()
    return report.as_dict()


@app.task(name="paperboy.harvest")
def harvest(names: list[str] | None = None, only_due: bool = False) -> dict[str, dict[str, object]]:
    """Harvest the configured sources (all, or ``names``), then embed what is new.

    With ``only_due`` (what beat asks every few minutes) only sources whose last run started
    ``PAPERBOY_HARVEST_EVERY_S`` ago or never: the schedule is the rows, so a fresh install
    harvests within minutes of starting rather than an interval later, and a restarted beat
    neither skips nor repeats a run.
    Safe to run twice at once: each source's run holds a lease in the database, so a second
    task finds the source busy and leaves it; a killed run's lease expires.
    """
    settings = get_settings()
    if settings.sources is None:
        return {}
    try:
        sources = select_sources(configured_sources(settings), names or [])
    except (SourcesError, ValueError) as exc:
        # A broken sources file is the operator's to fix; retrying would not help.
        log.error("harvest: %s", exc)
        return {}
    if only_due:
        sources = _due_sources(sources, settings, runtime.now())
    reports = harvest_sources(
        runtime.database(), sources, options_from_settings(settings, runtime.now())
    )
    for report in reports:
        if report.status == "failed":
            log.warning("harvest: %s", report.errors[-1])
    if any(report.new for report in reports):
        embed.delay()  # after the pages' commits
    return {report.name: report.as_dict() for report in reports}


def _due_sources(
    sources: list[SourceConfig], settings: Settings, now: datetime
) -> list[SourceConfig]:
    with runtime.database().session() as session:
        started = {name: st.last_started_at for name, st in harvest_states(session).items()}
    return due_sources(sources, started, now, timedelta(seconds=settings.harvest_every_s))


@app.task(name="paperboy.embed")
def embed() -> int:
    """Append embeddings of papers this host's store of the active model lacks (other hosts
    compute theirs when they first need them: see ``Model.paper_vectors``)."""
    model = runtime.active_model()
    if model is None:
        return 0
    with runtime.database().session() as session:
        missing = model.store.missing(all_paper_ids(session))
        model.paper_vectors(session, missing)  # appends what it computes
    return len(missing)


@app.task(name="paperboy.train")
def train(only_if_missing: bool = False) -> dict[str, object] | None:
    """Fit and activate a new model version, unless another worker is training (or, with
    ``only_if_missing``, unless a model is active or there are no papers yet)."""
    with runtime.database().session() as session:
        report = nightly.train_exclusively(
            session, get_settings(), runtime.now(), only_if_missing=only_if_missing
        )
    if report is None:
        return None
    verdict = "activated" if report.activated else "NOT activated"
    log.info("trained model %s, %s: %s", report.version, verdict, report.reason)
    # Digests planned while no model existed (a fresh install's first sign-ups) wait in
    # ``planned``: score them now rather than when the sweep finds them stale.
    with runtime.database().session() as session:
        waiting = outbox.stale(session, "planned", runtime.now(), MAX_WAITING_AFTER_TRAINING)
    _enqueue_chunks(score, waiting, get_settings().score_chunk_size)
    return report.as_dict()


@app.task(name="paperboy.plan")
def plan() -> int:
    """Plan digests for every due user, in batches, and fan the scoring out in chunks."""
    now = runtime.now()  # one instant for the whole run, so the loop ends
    policy = schedule_policy(get_settings())
    total = 0
    for _ in range(MAX_PLAN_BATCHES):
        with runtime.database().session() as session:
            ids = outbox.plan_due(session, now, policy)
            more = outbox.count_due(session, now) > 0
        _enqueue_chunks(score, ids, get_settings().score_chunk_size)  # after the commit
        total += len(ids)
        if not more:
            break
    return total


@app.task(name="paperboy.score")
def score(digest_ids: list[int]) -> int:
    """Rank a chunk of planned digests and enqueue their sends."""
    model = runtime.active_model()
    if model is None:
        log.warning("no active model: %d digests stay planned until training runs", len(digest_ids))
        return 0
    settings = get_settings()
    lookback = timedelta(days=settings.candidate_lookback_days)
    defaults = RankingDefaults.from_settings(settings)  # exploration and holdout
    # Leased once the model is loaded (its first load is the slow part), so that a worker
    # dying mid-chunk hands the chunk to the next sweep; ranking the chunk ends the lease.
    with runtime.database().session() as session:
        outbox.lease(session, digest_ids, "planned", _lease_until(settings, 0.0))
    with runtime.database().session() as session:
        ranked = scoring.rank_digests(
            session, digest_ids, model, runtime.now(), lookback=lookback, defaults=defaults
        )
    _enqueue_chunks(send, ranked, _send_chunk_size())
    return len(ranked)


@app.task(name="paperboy.send", bind=True, max_retries=8)
def send(self: Task, digest_ids: list[int] | int) -> dict[str, int]:
    """Send ranked digests; those that failed transiently retry with backoff and jitter.

    Only rounds that settled nothing count towards ``max_retries``: a round that sent (or
    finished) some digests continues as a fresh task. With a fifth of requests failing and
    a timeout cutting a chunk short every twenty digests, a chunk of 100 needs more than
    eight rounds while it is making progress all along.

    Out of retries, the digests stay ``ranked`` with a short lease: the sweep takes them over
    (and fails those out of attempts), rather than Celery logging MaxRetriesExceeded.
    """
    ids = [digest_ids] if isinstance(digest_ids, int) else list(digest_ids)
    settings = get_settings()
    report = sending.send_digests(
        runtime.database(), runtime.delivery_backend(), settings, ids, runtime.now
    )
    outcomes = Counter(o.outcome.value for o in report.outcomes.values())
    retry = report.ids(sending.Outcome.RETRY)
    if not retry:
        return outcomes
    progressed = len(retry) < len(ids)
    if not progressed and self.max_retries is not None and self.request.retries >= self.max_retries:
        _hand_back(retry)
        return outcomes
    # Backoff by the digests' own attempts, not the task's rounds: in a big chunk some digest
    # fails in most rounds, and a digest that failed once should not wait as if it had
    # failed in every round before it (a fifth failing made waits of minutes).
    with runtime.database().session() as session:
        tried = outbox.fewest_attempts(session, retry)
    countdown = backoff_s(max(tried - 1, 0), report.retry_after_s())
    # The next round holds the rows through its wait, so the sweep does not send them early;
    # if the worker holding it dies, or the broker loses it, the lease runs out and the sweep
    # takes them.
    with runtime.database().session() as session:
        outbox.lease(session, retry, "ranked", _lease_until(settings, countdown))
    if progressed:
        send.apply_async(args=(retry,), countdown=countdown)
        return outcomes
    raise self.retry(args=(retry,), countdown=countdown)


@app.task(name="paperboy.sweep")
def sweep() -> dict[str, int]:
    """Resolve stuck digests from provider events and re-enqueue work whose task was lost."""
    queues_lost = broker_lost_its_queues()
    with runtime.database().session() as session:
        report = reconcile.sweep(
            session, runtime.now(), reconcile.sweep_policy(get_settings()), queues_lost=queues_lost
        )
    _enqueue_chunks(score, report.score, get_settings().score_chunk_size)
    _enqueue_chunks(send, report.send, _send_chunk_size())
    if any(report.as_dict().values()):
        # Anything the sweep had to do means a task or a reply was lost: worth a log line.
        log.warning("sweep: %s", report.as_dict())
    return report.as_dict()


# Helpers ------------------------------------------------------------------------------------


def _lease_until(settings: Settings, wait_s: float) -> datetime:
    return runtime.now() + timedelta(seconds=wait_s + settings.digest_lease_s)


def _hand_back(digest_ids: list[int]) -> None:
    """Leave digests that used up the task's retries to the sweep: ranked, with a short lease.

    The lease is a pause, not a hold: when it runs out the next sweep re-enqueues them with
    a fresh retry budget (or fails those out of attempts, saying why). Without one they would
    wait PAPERBOY_SWEEP_STALE_AFTER_S like a task that was never started.
    """
    with runtime.database().session() as session:
        outbox.lease(
            session, digest_ids, "ranked", runtime.now() + timedelta(seconds=HAND_BACK_PAUSE_S)
        )
    # A warning, not an error: nothing is lost.
    log.warning(
        "send: %d digests still failing after the last retry; the sweep takes them over in %.0f s",
        len(digest_ids),
        HAND_BACK_PAUSE_S,
    )


def backoff_s(retries: int, retry_after_s: float | None) -> float:
    """Exponential backoff with jitter, at least the provider's ``Retry-After``, capped.

    The jitter spreads a burst of 429s over time instead of retrying them in lockstep; the
    cap keeps retries short broker ETAs (a long one would sit unacknowledged in a worker).
    """
    backoff = min(2.0**retries, MAX_BACKOFF_S) * random.uniform(0.5, 1.5)
    return min(max(backoff, retry_after_s or 0.0), MAX_RETRY_WAIT_S)


def schedule_policy(settings: Settings) -> SchedulePolicy:
    return SchedulePolicy(
        jitter_s=settings.schedule_jitter_s,
        first_lookback=timedelta(days=settings.candidate_lookback_days),
        catch_up_cap=timedelta(days=settings.catch_up_cap_days),
    )


@lru_cache(maxsize=1)
def _send_chunk_size() -> int:
    # A template-mode task sends one request per batch; a rendered one sends its chunk one
    # message at a time over one kept-alive connection, so a chunk the size of a score chunk
    # keeps tasks short and lets both worker processes share the work.
    backend = runtime.delivery_backend()
    if isinstance(backend, BatchEmailBackend):
        return backend.batch_size
    return get_settings().score_chunk_size


def _enqueue_chunks(task: Task, ids: list[int], size: int) -> None:
    for start in range(0, len(ids), size):
        task.delay(ids[start : start + size])
