"""Sentry: off (and not imported) without a DSN; with one, errors of a route and of a task
reach it, and the link tokens in their URLs and arguments do not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.links import make_token
from recsys.testing.sentry import SentryStandIn
from tests.conftest import NOW

sentry_sdk = pytest.importorskip("sentry_sdk")


@pytest.fixture()
def sentry() -> Iterator[SentryStandIn]:
    with SentryStandIn() as stand_in:
        yield stand_in
    # The SDK's client is process-wide: leave none behind for the next test.
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


def a_token(settings: Settings) -> str:
    return make_token(settings.secret_key, "preferences", {"u": 1}, NOW + timedelta(days=1))


def test_nothing_is_imported_or_sent_without_a_dsn() -> None:
    code = (
        "import sys\n"
        "from recsys.settings import Settings\n"
        "from recsys.sentry import init_sentry\n"
        "print(init_sentry(Settings(sentry_dsn=None), 'api'), 'sentry_sdk' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.split() == ["False", "False"]


def test_an_error_in_a_route_reaches_sentry_without_the_token(
    db: Database, settings: Settings, sentry: SentryStandIn
) -> None:
    configured = settings.model_copy(update={"sentry_dsn": sentry.dsn})
    app = create_app(configured, clock=lambda: NOW)
    token = a_token(settings)

    @app.get("/preferences/{token}/explode")
    def explode(token: str) -> None:
        raise RuntimeError("the route failed")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(f"/preferences/{token}/explode", params={"t": token})
    sentry_sdk.flush(timeout=5)

    assert response.status_code == 500
    sent = sentry.text()
    assert "the route failed" in sent
    assert "/preferences/[token]/explode" in sent
    assert token not in sent
    assert token.split(".")[1] not in sent  # not even the MAC alone


def test_an_error_in_a_task_reaches_sentry_without_the_token(
    settings: Settings, sentry: SentryStandIn
) -> None:
    from celery import Celery

    from recsys.sentry import init_sentry

    assert init_sentry(settings.model_copy(update={"sentry_dsn": sentry.dsn}), "worker")
    celery = Celery("sentry-test", broker="memory://")
    token = a_token(settings)

    @celery.task(name="test.explode")
    def explode(link: str) -> None:
        raise ValueError(f"could not follow /preferences/{link}")

    # Celery's own tracer runs the task here (what a worker runs around every task, and what
    # the Celery integration hooks), so no broker is needed.
    explode.apply(args=[token])
    sentry_sdk.flush(timeout=5)

    sent = sentry.text()
    assert "could not follow /preferences/[token]" in sent
    assert "test.explode" in sent
    assert token not in sent
