"""Send me my preferences link: the same answer for any address, limited, no typed text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from recsys.db.models import UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.accounts import unsubscribe
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import Tasks, path_of
from tests.conftest import NOW

URL = "/preferences-link"
TASK = "paperboy.send_preferences_link"


def ask(client: TestClient, email: str, **extra: str) -> Any:
    return client.post(URL, data={"email": email, **extra})


def test_the_form_is_served(client: TestClient) -> None:
    page = client.get(URL)

    assert page.status_code == 200
    assert 'action="/preferences-link"' in page.text and 'name="website"' in page.text


def test_a_subscriber_is_sent_a_link_and_anyone_else_the_same_answer(
    client: TestClient, tasks: Tasks, alice: UserRow
) -> None:
    known = ask(client, "Alice@Example.org")
    unknown = ask(client, "nobody@example.org")
    garbage = ask(client, "not an address")

    assert known.status_code == unknown.status_code == garbage.status_code == 200
    assert known.text.replace("Alice@Example.org", "X") == unknown.text.replace(
        "nobody@example.org", "X"
    )
    assert tasks == [(TASK, [alice.id])]


@pytest.mark.parametrize("status", ["paused", "unsubscribed"])
def test_a_paused_or_unsubscribed_subscriber_can_get_back_in(
    client: TestClient, db: Database, tasks: Tasks, alice: UserRow, status: str
) -> None:
    with db.session() as session:
        if status == "unsubscribed":
            unsubscribe(session, alice.id, NOW)
        else:
            session.execute(update(UserRow).where(UserRow.id == alice.id).values(status=status))

    ask(client, "alice@example.org")

    assert tasks == [(TASK, [alice.id])]


def test_a_pending_sign_up_gets_no_link(
    client: TestClient, db: Database, tasks: Tasks, alice: UserRow
) -> None:
    with db.session() as session:
        session.execute(update(UserRow).where(UserRow.id == alice.id).values(status="pending"))

    assert ask(client, "alice@example.org").status_code == 200
    assert tasks == []


def test_one_link_a_day_per_address(client: TestClient, tasks: Tasks, alice: UserRow) -> None:
    for _ in range(3):
        assert ask(client, "alice@example.org").status_code == 200

    assert tasks == [(TASK, [alice.id])]


def test_a_honeypot_or_another_site_sends_nothing(
    client: TestClient, tasks: Tasks, alice: UserRow
) -> None:
    bot = ask(client, "alice@example.org", website="x")
    foreign = client.post(
        URL, data={"email": "alice@example.org"}, headers={"Sec-Fetch-Site": "cross-site"}
    )

    assert bot.status_code == 200 and foreign.status_code == 403
    assert tasks == []


def test_one_client_gets_a_429_after_its_limit(client: TestClient) -> None:
    answers = [ask(client, f"p{i}@example.org").status_code for i in range(11)]

    assert answers == [200] * 10 + [429]


def test_an_expired_preferences_link_points_to_the_form(
    client: TestClient, settings: Settings, alice: UserRow
) -> None:
    old = LinkMaker(settings.secret_key, settings.public_base_url, NOW - timedelta(seconds=1))

    page = client.get(path_of(old.preferences(alice.id, alice.created_at)))

    assert page.status_code == 400
    assert 'href="/preferences-link"' in page.text
