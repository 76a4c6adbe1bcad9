"""The e-mails a reader asks for, sent by the plain functions the tasks call."""

from __future__ import annotations

import email
import email.policy
import re
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from recsys.db.models import UserRow
from recsys.db.session import Database
from recsys.delivery import FileBackend
from recsys.delivery.backends import confirmation_outbox_key as outbox_key
from recsys.delivery.backends import link_outbox_key
from recsys.settings import Settings
from recsys.subscribers.accounts import (
    Interest,
    Preferences,
    create_user,
    delete_account,
    sign_up,
    suppress,
    unsent_confirmations,
)
from tests.conftest import NOW
from workers.embedded import Embedded
from workers.onboarding import send_preferences_link


@pytest.fixture()
def user(db: Database) -> UserRow:
    with db.session() as session:
        return create_user(
            session, "bea@example.org", NOW, name="Bea", interests=[Interest("keyword", "x")]
        )


def sent(settings: Settings, user_id: int) -> EmailMessage:
    eml = settings.outbox_dir / f"digest-{link_outbox_key(user_id)}.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_a_fresh_preferences_link_opens_the_page_for_sixty_days(
    db: Database, settings: Settings, user: UserRow
) -> None:
    later = NOW + timedelta(days=400)  # long after every link the user had expired

    assert send_preferences_link(db, FileBackend(settings.outbox_dir), settings, user.id, later)

    message = sent(settings, user.id)
    assert message["To"] == "bea@example.org"
    assert message["Subject"] == "Your Paperboy preferences link"
    match = re.search(r"http://testserver(/preferences/\S+)", text_of(message))
    assert match is not None and "/unsubscribe/" in text_of(message)
    app = create_app(settings, clock=lambda: later + timedelta(days=59))
    with TestClient(app) as client:
        page = client.get(match[1])
    assert page.status_code == 200 and "bea@example.org" in page.text


def test_it_never_overwrites_a_confirmation_in_the_outbox(user: UserRow) -> None:
    assert link_outbox_key(user.id) != outbox_key(user.id)
    assert link_outbox_key(user.id) < 0


@pytest.mark.parametrize("case", ["pending", "bounced", "deleted"])
def test_nothing_is_sent_to_a_pending_bounced_or_deleted_account(
    db: Database, settings: Settings, user: UserRow, case: str
) -> None:
    with db.session() as session:
        if case == "pending":
            session.execute(update(UserRow).where(UserRow.id == user.id).values(status="pending"))
        elif case == "bounced":
            suppress(session, user.email, "bounce", NOW)
        else:
            delete_account(session, user.id, FileBackend(settings.outbox_dir))

    backend = FileBackend(settings.outbox_dir)
    assert not send_preferences_link(db, backend, settings, user.id, NOW)
    assert not settings.outbox_dir.exists() or not any(settings.outbox_dir.iterdir())


def test_a_sign_up_made_while_no_broker_ran_is_mailed_by_the_sweep(
    db: Database, settings: Settings, runtime: Embedded
) -> None:
    now = datetime.now(UTC)
    with db.session() as session:  # the API stored it, but its task never reached a broker
        signed = sign_up(session, "cy@example.org", now - timedelta(minutes=3), Preferences())
        assert signed.user is not None
        user_id = signed.user.id
    assert runtime.celery is not None
    eml = settings.outbox_dir / f"digest-{outbox_key(user_id)}.eml"

    runtime.celery.send_task("paperboy.sweep_confirmations")  # what beat does every 2 minutes
    deadline = time.monotonic() + 60
    while not eml.exists() and time.monotonic() < deadline:
        time.sleep(0.2)

    assert eml.exists()
    assert "/confirm/" in text_of(
        email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)  # type: ignore[arg-type]
    )
    with db.session() as session:
        sent_at = session.get(UserRow, user_id).confirmation_sent_at  # type: ignore[union-attr]
        assert sent_at is not None
        assert (
            unsent_confirmations(
                session, now, settle=timedelta(0), ttl=timedelta(days=7), max_attempts=8
            )
            == []
        )  # recorded as sent: no sweep mails it again
