"""The Celery app, configured from the one settings object.

Tasks take ids, re-read state from the database and are idempotent, so ``acks_late`` with
prefetch 1 is safe: a task whose worker dies is redelivered and finds the work done or
claimable. Results are not stored; the database is the record of what happened. Nothing
depends on the broker keeping a message: the sweep re-enqueues from the outbox rows whatever
a lost message (a restarted Redis, a killed worker) would have done.
"""

from __future__ import annotations

from celery import Celery

from recsys.settings import Settings, get_settings

QUEUE = "paperboy"


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
        # Beat only enqueues short tasks on a timer; the outbox rows hold what must happen, so
        # a missed tick delays work by one interval and loses nothing.
        beat_schedule={
            "plan-due-digests": {"task": "paperboy.plan", "schedule": settings.plan_interval_s},
            "sweep-outbox": {"task": "paperboy.sweep", "schedule": settings.sweep_interval_s},
            "embed-new-papers": {"task": "paperboy.embed", "schedule": 900.0},
        },
    )
    return app


app = make_celery(get_settings())
