"""The broker mark: how the sweep knows the broker restarted empty and lost every task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.settings import Settings
from recsys.testing.processes import RedisServer, free_port
from workers.app import broker_lost_its_queues, make_celery


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server without persistence, so a restart loses every key."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    yield redis_server
    redis_server.stop()


def test_the_mark_answers_true_once_then_again_after_the_broker_restarts_empty(
    server: RedisServer, settings: Settings
) -> None:
    celery = make_celery(settings.model_copy(update={"redis_url": server.url}))
    assert broker_lost_its_queues(celery) is True  # no mark yet: nothing can be assumed
    assert broker_lost_its_queues(celery) is False
    assert broker_lost_its_queues(celery) is False
    server.restart(down_s=0.1)  # every queued task, and the mark, are gone
    assert broker_lost_its_queues(celery) is True
    assert broker_lost_its_queues(celery) is False


def test_a_broker_that_cannot_be_reached_means_cannot_tell(settings: Settings) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    celery = make_celery(settings.model_copy(update={"redis_url": url}))
    celery.conf.broker_connection_retry = False
    celery.conf.broker_connection_max_retries = 0
    assert broker_lost_its_queues(celery) is False
