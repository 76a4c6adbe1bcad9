"""Prometheus metrics, read from the database, the model store and the broker at scrape time.

Why the facts are read rather than counted in memory: :mod:`recsys.observability`. Nothing
here runs on a request other than ``/metrics`` (the tracked-link path is untouched), and
nothing here names a subscriber: counts, statuses, source names and the model version only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from recsys import observability
from recsys.catalog.harvest.state import states
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import store

BROKER_TIMEOUT_S = 0.5
# Where Celery's Redis transport keeps the messages delivered to a worker and not yet
# acknowledged (acks_late: the tasks running now, on every worker).
UNACKED_KEY = "unacked"
HARVEST_COUNTS = ("read", "new", "updated", "skipped")


class PaperboyCollector(Collector):
    """Yields every Paperboy metric family, computed afresh at each scrape."""

    def __init__(
        self, settings: Settings, database: Database, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("paperboy_database_up", "1 when the database answered this scrape")
        try:
            with self.database.session() as session:
                families = list(database_families(session))
        except SQLAlchemyError:
            families = []
        up.add_metric([], 1.0 if families else 0.0)
        yield up
        yield from families
        yield from model_families(self.database, self.clock())
        yield from broker_families(self.settings)


def database_families(session: Session) -> Iterator[Metric]:
    yield _digests(session)
    yield from _emails(session)
    yield _events(session)
    yield _provider_events(session)
    yield from _harvest(session)


def _digests(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "paperboy_digests",
        "Digest rows by status (planned ranked sending sent failed skipped unknown)",
        labels=["status"],
    )
    for status, n in sorted(observability.digests_by_status(session).items()):
        family.add_metric([status], n)
    return family


def _emails(session: Session) -> Iterator[Metric]:
    attempts = CounterMetricFamily(
        "paperboy_email_attempts",
        "Delivery attempts by backend and outcome (sent, transient, permanent, unknown, pending)",
        labels=["backend", "outcome"],
    )
    for (backend, outcome), n in sorted(observability.attempts_by_outcome(session).items()):
        attempts.add_metric([backend, outcome], n)
    yield attempts
    latency = GaugeMetricFamily(
        "paperboy_email_provider_seconds",
        f"Provider answer time, quantiles of the last {observability.LATENCY_SAMPLE} attempts",
        labels=["backend", "quantile"],
    )
    sampled = GaugeMetricFamily(
        "paperboy_email_provider_sampled_attempts",
        "Attempts the provider latency quantiles were computed from",
        labels=["backend"],
    )
    for backend, found in sorted(observability.provider_latency(session).items()):
        for q, seconds in found.quantiles.items():
            latency.add_metric([backend, str(q)], seconds)
        sampled.add_metric([backend], found.count)
    yield latency
    yield sampled


def _events(session: Session) -> Metric:
    family = CounterMetricFamily(
        "paperboy_events",
        "Clicks and feedback (click, more, less, seed) stored; suspect=true are link scanners",
        labels=["kind", "suspect"],
    )
    for (kind, suspect), n in sorted(observability.events_by_kind(session).items()):
        family.add_metric([kind, "true" if suspect else "false"], n)
    return family


def _provider_events(session: Session) -> Metric:
    family = CounterMetricFamily(
        "paperboy_provider_events",
        "Events the e-mail provider reported (delivered, bounce, spamreport, ...)",
        labels=["kind"],
    )
    for kind, n in sorted(observability.provider_events_by_kind(session).items()):
        family.add_metric([kind], n)
    return family


def _harvest(session: Session) -> Iterator[Metric]:
    ok = GaugeMetricFamily(
        "paperboy_harvest_last_ok", "1 when the source's last harvest succeeded", labels=["source"]
    )
    finished = GaugeMetricFamily(
        "paperboy_harvest_last_finished_timestamp_seconds",
        "When the source's last harvest finished (Unix time)",
        labels=["source"],
    )
    papers = GaugeMetricFamily(
        "paperboy_harvest_last_papers",
        "Records in the source's last harvest, by result (read new updated skipped errors)",
        labels=["source", "result"],
    )
    for name, state in sorted(states(session).items()):
        if state.last_status is not None:
            ok.add_metric([name], 1.0 if state.last_status == "ok" else 0.0)
        if state.last_finished_at is not None:
            finished.add_metric([name], state.last_finished_at.timestamp())
        result = state.last_result or {}
        for key in HARVEST_COUNTS:
            if isinstance(result.get(key), int):
                papers.add_metric([name, key], result[key])
        if isinstance(result.get("errors"), list):
            papers.add_metric([name, "errors"], len(result["errors"]))
    yield from (ok, finished, papers)


def model_families(database: Database, now: datetime) -> Iterator[Metric]:
    """The active model's version (as a label) and age; nothing before the first training."""
    try:
        with database.session() as session:
            version = store.active_version(session)
            manifest = store.read_manifest(session, version) if version else {}
    except (SQLAlchemyError, OSError, ValueError):
        return
    if version is None:
        return
    info = GaugeMetricFamily(
        "paperboy_model_info", "The active model version (value 1)", labels=["version"]
    )
    info.add_metric([version], 1.0)
    yield info
    created = manifest.get("created_at")
    if created:
        age = GaugeMetricFamily(
            "paperboy_model_age_seconds", "Seconds since the active model was trained"
        )
        age.add_metric([], (now - datetime.fromisoformat(created)).total_seconds())
        yield age


def broker_families(settings: Settings) -> Iterator[Metric]:
    """Tasks waiting in the queue and tasks being worked on, or ``broker_up 0``."""
    from workers.app import QUEUE  # here: the API imports Celery only when it needs it

    up = GaugeMetricFamily("paperboy_broker_up", "1 when the broker answered this scrape")
    try:
        client = redis.Redis.from_url(
            redis_py_url(settings.broker_url),
            socket_timeout=BROKER_TIMEOUT_S,
            socket_connect_timeout=BROKER_TIMEOUT_S,
        )
        with client:
            waiting, running = client.llen(QUEUE), client.hlen(UNACKED_KEY)
    except (redis.RedisError, OSError, ValueError):
        up.add_metric([], 0.0)
        yield up
        return
    up.add_metric([], 1.0)
    yield up
    depth = GaugeMetricFamily(
        "paperboy_queue_tasks",
        "Celery tasks in the broker: waiting or unacked (running)",
        labels=["queue", "state"],
    )
    depth.add_metric([QUEUE, "waiting"], waiting)
    depth.add_metric([QUEUE, "unacked"], running)
    yield depth


def redis_py_url(broker_url: str) -> str:
    """The broker URL as redis-py spells it: Celery's ``redis+socket://`` is its ``unix://``."""
    prefix = "redis+socket://"
    return "unix://" + broker_url[len(prefix) :] if broker_url.startswith(prefix) else broker_url


def registry(
    settings: Settings, database: Database, clock: Callable[[], datetime]
) -> CollectorRegistry:
    """A registry of this app's own (not the process-global one, which tests would share)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(PaperboyCollector(settings, database, clock))
    return found
