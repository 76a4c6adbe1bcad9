"""The other ways out: the SMTP backend end to end, and the demo against a failing SendGrid."""

from __future__ import annotations

import email
import email.policy
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select

from api.demo import load_world, run_demo
from api.digest_run import wait_until_final
from recsys.db.models import DeliveryAttemptRow, DigestRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.testing.sendgrid import SendGridStandIn
from recsys.training.nightly import train
from tests.recsys.delivery.test_smtp_backend import SmtpResponder, running
from workers.embedded import Embedded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
N_USERS = 60


@pytest.fixture()
def clean_broker() -> None:
    url = os.environ.get("PAPERBOY_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()  # no task left over from an earlier test


@pytest.fixture()
def relay() -> Iterator[SmtpResponder]:
    yield from running(SmtpResponder())


def test_smtp_delivers_one_message_per_user_through_the_worker(
    db: Database, settings: Settings, relay: SmtpResponder
) -> None:
    # A private broker (redis_url=None): no other test's worker can take this run's tasks.
    smtp = settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_url": f"smtp://127.0.0.1:{relay.port}?timeout=5",
            "redis_url": None,
        }
    )
    now = datetime.now(UTC)
    world = generate_world(N_USERS, 200, seed=5, now=now)
    with db.session() as s:
        load_world(s, world, now)
        train(s, smtp, now)
    with Embedded(smtp) as runtime:
        assert runtime.celery is not None
        runtime.celery.send_task("paperboy.plan")
        counts = wait_until_final(db, now, N_USERS, runtime.alive, 120, lambda *_: None)

    assert counts == {"sent": N_USERS}
    received = [email.message_from_bytes(m, policy=email.policy.default) for m in relay.messages]
    recipients = Counter(str(m["To"].addresses[0].addr_spec) for m in received)
    assert recipients == Counter(world.user_emails)  # each exactly once
    with db.session() as s:
        provider_ids = set(s.scalars(select(DigestRow.provider_id)).all())
        backends = set(s.scalars(select(DeliveryAttemptRow.backend)).all())
    assert provider_ids == {str(m["Message-ID"]).strip() for m in received}
    assert backends == {"smtp"}


def test_the_demo_gives_everyone_one_email_through_a_sendgrid_failing_a_fifth(
    settings: Settings, db: Database, clean_broker: None
) -> None:
    with SendGridStandIn(failure_rate=0.2, seed=3) as sendgrid:
        configured = settings.model_copy(
            update={
                "email_backend": "sendgrid",
                "sendgrid_api_key": sendgrid.api_key,
                "sendgrid_api_host": sendgrid.url,
                "sendgrid_timeout_s": 5.0,
            }
        )
        summary = run_demo(configured, datetime.now(UTC), n_users=N_USERS, timeout_s=180)
        counts = sendgrid.digest_counts()

    assert summary.statuses == {"sent": N_USERS}
    assert len(counts) == N_USERS and set(counts.values()) == {1}
    assert sendgrid.attempts > N_USERS  # a fifth failed and was retried
