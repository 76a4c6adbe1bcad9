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
from sqlalchemy import func, select

from api.demo import load_world, run_demo
from api.digest_run import wait_until_final
from recsys.db.models import DeliveryAttemptRow, DigestRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.testing.sendgrid import SendGridStandIn
from recsys.training.nightly import train
from tests.faults.conftest import ApiServer
from tests.recsys.delivery.test_smtp_backend import SmtpResponder, running
from workers.embedded import Embedded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]
N_USERS = 60
DEMO_USERS = 300


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


def test_the_demo_for_300_gives_everyone_one_email_through_a_failing_and_hanging_sendgrid(
    settings: Settings, db: Database, clean_broker: None
) -> None:
    """Issue 11: ``paperboy demo --users 300`` against a SendGrid that fails a fifth of the
    requests (500/502/503/429) and takes 5% then hangs past the client's timeout ends with
    every subscriber's digest accepted exactly once, with the default recovery settings."""
    sendgrid = SendGridStandIn(
        failure_rate=0.2,
        failure_statuses=(429, 500, 502, 503),
        hang_rate=0.05,
        hold_s=4.0,  # past the client's 2 s: accepted, but the client never hears so
        seed=3,
    )
    configured = settings.model_copy(
        update={
            "email_backend": "sendgrid",
            "sendgrid_api_key": sendgrid.api_key,
            "sendgrid_timeout_s": 2.0,
            "sendgrid_webhook_public_key": sendgrid.public_key,
        }
    )
    api = ApiServer(configured)  # SendGrid's events reach the service through its webhook
    api.start()
    try:
        sendgrid.webhook_url = f"{api.url}/webhooks/sendgrid"
        with sendgrid:
            configured = configured.model_copy(update={"sendgrid_api_host": sendgrid.url})
            summary = run_demo(configured, datetime.now(UTC), n_users=DEMO_USERS, timeout_s=400)
            counts = sendgrid.digest_counts()
    finally:
        api.stop()

    assert summary.statuses == {"sent": DEMO_USERS}
    assert len(counts) == DEMO_USERS and set(counts.values()) == {1}  # accepted exactly once
    assert sendgrid.attempts > DEMO_USERS  # some failed and were retried
    with db.session() as s:
        resolved_by_events = s.scalar(
            select(func.count()).where(DigestRow.reason.like("accepted: SendGrid reported%"))
        )
    assert resolved_by_events  # some replies were lost, and SendGrid's events resolved them
