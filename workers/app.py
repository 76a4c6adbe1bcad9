"""The Celery app, configured from the one settings object.

Tasks take ids, re-read state from the database and are idempotent, so ``acks_late`` with
prefetch 1 is safe: a task whose worker dies is redelivered and finds the work done or
claimable. Results are not stored; the database is the record of what happened. Nothing
depends on the broker keeping a message: the sweep re-enqueues from the outbox rows whatever
a lost message (a restarted Redis, a killed worker) would have done.
"""

from __future__ import annotations

import logging
import os
from typing import Any

# One BLAS thread per pool process, set before anything loads numpy. The prefork pool already
# runs one process per core; BLAS threads on top oversubscribe the cores and make a chunk's
# matrix products slower, not faster. An operator's own setting wins. OpenMP is left alone:
# the training task's ALS and LightFM fits are parallel loops that do use every core.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in BLAS_THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")

from celery import Celery  # noqa: E402 - after the BLAS variables, see above
from celery.schedules import crontab  # noqa: E402
from celery.signals import (  # noqa: E402
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
)

from recsys import logs  # noqa: E402
from recsys.settings import Settings, get_settings  # noqa: E402

log = logging.getLogger(__name__)

QUEUE = "paperboy"
# Beat asks this often which sources are due (their last run is a row); a first harvest
# comes within this long of starting.
HARVEST_CHECK_S = 300.0


@worker_process_init.connect
def limit_blas_threads(**_: Any) -> None:
    """Hold each pool process to ``OPENBLAS_NUM_THREADS`` BLAS threads.

    The variables above only act on a BLAS library loaded after them; this also covers a
    worker started from a process that had already imported numpy.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")


@worker_process_init.connect
def report_errors(**_: Any) -> None:
    """Each pool process reports task errors to Sentry when ``PAPERBOY_SENTRY_DSN`` is set."""
    from recsys.sentry import init_sentry

    init_sentry(get_settings(), "worker")


@setup_logging.connect
def configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """The worker's and beat's logging is :mod:`recsys.logs`'s, at ``--loglevel``.

    Connected, this signal replaces Celery's own set-up: a plain-text root handler at
    ``--loglevel``, which the embedded worker set to WARNING, so every application
    ``log.info`` was dropped and no line could be JSON. Pool processes are forked after this
    and inherit it.
    """
    settings = get_settings()
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
    logs.configure(level or settings.log_level, settings.log_format)


@task_prerun.connect
def bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Every line a task logs names the task and its id (Flower and the log then meet)."""
    logs.set_context(task=getattr(task, "name", None), task_id=task_id)


@task_postrun.connect
def unbind_task(**_: Any) -> None:
    logs.clear_context()


def make_celery(settings: Settings) -> Celery:
    app = Celery(
        "paperboy", broker=settings.broker_url, include=["workers.tasks", "workers.onboarding"]
    )
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # A visibility timeout longer than any task, shorter than a day: an unacked task
        # whose worker vanished comes back within the hour.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        # Task events (received, started, succeeded, failed, retried) for Flower's task
        # history; "sent" events also show tasks still waiting in the queue.
        worker_send_task_events=True,
        task_send_sent_event=True,
        # Beat only enqueues short tasks on a timer; the outbox rows hold what must happen, so
        # a missed tick delays work by one interval and loses nothing.
        beat_schedule={
            "plan-due-digests": {"task": "paperboy.plan", "schedule": settings.plan_interval_s},
            "sweep-outbox": {"task": "paperboy.sweep", "schedule": settings.sweep_interval_s},
            "sweep-confirmations": {
                "task": "paperboy.sweep_confirmations",
                "schedule": settings.sweep_interval_s,
            },
            "embed-new-papers": {"task": "paperboy.embed", "schedule": 900.0},
            "train-nightly": {
                "task": "paperboy.train",
                "schedule": crontab(minute=0, hour=settings.train_hour_utc),
            },
            # A fresh install: the first model as soon as there are papers, no command needed.
            "train-first-model": {
                "task": "paperboy.train",
                "schedule": settings.plan_interval_s,
                "kwargs": {"only_if_missing": True},
            },
            # Does nothing while PAPERBOY_SOURCES is unset; embeds whatever a run brought.
            "harvest-sources": {
                "task": "paperboy.harvest",
                "schedule": min(settings.harvest_every_s, HARVEST_CHECK_S),
                "kwargs": {"only_due": True},
            },
        },
    )
    return app


app = make_celery(get_settings())

# Set in the broker's own keyspace; its absence means the broker's data is not what it was.
BROKER_MARK = "paperboy:broker-mark"


def broker_lost_its_queues(celery: Celery = app) -> bool:
    """True when the broker holds no mark of ours: it restarted without its data (Redis
    without persistence, or a new instance), so every queued task is gone; then set the mark.

    Provable abandonment for work that no worker ever took: the sweep re-enqueues it at once
    instead of after PAPERBOY_SWEEP_STALE_AFTER_S. The first call ever also answers True,
    which costs one harmless re-enqueue (tasks are idempotent). Brokers other than Redis, or
    a broker that cannot be reached, answer False: the stale rule still covers them.
    """
    try:
        with celery.connection_for_write() as connection:
            client = getattr(connection.default_channel, "client", None)
            if client is None:
                return False
            return bool(client.set(BROKER_MARK, "1", nx=True))
    except Exception:  # noqa: BLE001 - any broker failure means "cannot tell", never a crash
        log.warning("could not read the broker's mark; assuming its queues are intact")
        return False
