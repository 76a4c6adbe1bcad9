"""The send task out of retries, through a real worker: the sweep takes over, quietly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from recsys.db.models import DigestRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.testing.sendgrid import SendGridStandIn
from tests.recsys import world
from workers.embedded import Embedded
from workers.tasks import HAND_BACK_PAUSE_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture()
def always_503() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(failure_rate=1.0, failure_statuses=(503,)) as standin:
        yield standin


def _wait_for(path: Path, text: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = path.read_text() if path.exists() else ""
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_the_last_retry_hands_the_digests_to_the_sweep_without_an_error(
    db: Database, settings: Settings, always_503: SendGridStandIn
) -> None:
    configured = settings.model_copy(
        update={
            "email_backend": "sendgrid",
            "sendgrid_api_key": always_503.api_key,
            "sendgrid_api_host": always_503.url,
        }
    )
    digest_ids = world.ranked_digests(db, configured)
    before = datetime.now(UTC)
    with Embedded(configured, concurrency=1) as runtime:
        assert runtime.celery is not None
        # The message a task on its last retry would carry (max_retries is 8).
        runtime.celery.send_task("paperboy.send", args=[digest_ids], retries=8)
        log = _wait_for(
            configured.data_dir / "logs" / "worker.log", "the sweep takes them over", 60
        )
    assert always_503.attempts == len(digest_ids)  # each tried once, then no retry
    assert "ERROR" not in log and "Traceback" not in log and "MaxRetriesExceeded" not in log
    with db.session() as s:
        rows = s.execute(select(DigestRow.status, DigestRow.attempts, DigestRow.lease_until))
        found = rows.all()
    assert [(status, attempts) for status, attempts, _ in found] == [("ranked", 1)] * len(
        digest_ids
    )
    # A pause of HAND_BACK_PAUSE_S, after which the sweep (every 30 s) re-enqueues them: the
    # sweep's stale delay of 15 minutes does not apply.
    pauses = [(until - before).total_seconds() for _, _, until in found]
    assert all(HAND_BACK_PAUSE_S <= pause <= HAND_BACK_PAUSE_S + 60 for pause in pauses)
