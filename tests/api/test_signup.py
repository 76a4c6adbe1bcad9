"""Self-service sign-up with double opt-in, from the form to the confirmed subscription."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.models import EventRow, InterestRow, UserRow
from recsys.db.session import Database
from recsys.delivery import FileBackend
from recsys.delivery.backends import confirmation_outbox_key as outbox_key
from recsys.digests.outbox import plan_due
from recsys.domain import Paper
from recsys.settings import Settings
from recsys.subscribers.accounts import suppress, unsubscribe
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import Tasks, path_of, stored_user
from tests.conftest import NOW
from workers.onboarding import send_confirmation

FORM = {
    "email": "Grace@Example.org",
    "name": "Grace",
    "keywords": "speech recognition, acoustic models",
    "authors": "Ada Lovelace",
    "categories": "eess.AS cs.SD",
    "description": "Automatic speech recognition for low-resource languages",
    "seeds": "",
    "library": "",
    "timezone": "Europe/Paris",
    "send_hour": "8",
    "frequency": "daily",
    "digest_size": "5",
}


def sign_up(client: TestClient, **changes: str) -> Any:
    return client.post("/signup", data={**FORM, **changes})


def user_by_email(db: Database, address: str) -> UserRow | None:
    with db.session() as session:
        return session.scalar(select(UserRow).where(UserRow.email == address))


def interests_of(db: Database, user_id: int) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.scalars(select(InterestRow).where(InterestRow.user_id == user_id))
        return [(row.kind, row.value) for row in rows]


def run_confirmations(tasks: Tasks, db: Database, settings: Settings) -> list[EmailMessage]:
    """Run the enqueued confirmation tasks the way the worker does; return the e-mails."""
    backend = FileBackend(settings.outbox_dir)
    sent = []
    for name, (user_id,) in tasks:
        assert name == "paperboy.send_confirmation"
        if send_confirmation(db, backend, settings, user_id, NOW):
            eml = settings.outbox_dir / f"digest-{outbox_key(user_id)}.eml"
            sent.append(email.message_from_bytes(eml.read_bytes(), policy=email.policy.default))
    return sent


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def confirm_link(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"http://testserver(/confirm/\S+)", body.get_content())
    assert match is not None
    return match[1]


def test_it_shows_the_sign_up_form(client: TestClient) -> None:
    response = client.get("/signup")

    assert response.status_code == 200
    assert '<form method="post" action="/signup">' in response.text
    assert 'name="library"' in response.text and "<option selected>UTC</option>" in response.text


def test_a_sign_up_is_pending_until_the_e_mailed_link_is_confirmed(
    client: TestClient, db: Database, settings: Settings, tasks: Tasks
) -> None:
    response = sign_up(client)

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    user = user_by_email(db, "grace@example.org")
    assert user is not None and (user.status, user.confirmed_at) == ("pending", None)
    assert interests_of(db, user.id) == [
        ("keyword", "speech recognition"),
        ("keyword", "acoustic models"),
        ("author", "Ada Lovelace"),
        ("category", "eess.AS"),
        ("category", "cs.SD"),
        ("text", "Automatic speech recognition for low-resource languages"),
    ]
    assert (user.timezone, user.send_hour, user.digest_size) == ("Europe/Paris", 8, 5)
    assert tasks == [("paperboy.send_confirmation", [user.id])]
    with db.session() as session:
        assert plan_due(session, NOW) == []

    [message] = run_confirmations(tasks, db, settings)
    assert message["To"] == "grace@example.org"  # the typed name is not echoed to the inbox
    assert "Grace" not in text_of(message) and "Hello," in text_of(message)
    assert message["Subject"] == "Confirm your Paperboy subscription"
    assert message["List-Unsubscribe"] is None
    link = confirm_link(message)

    page = client.get(link)
    assert page.status_code == 200
    assert "Yes, confirm my subscription" in page.text
    assert stored_user(db, user.id).status == "pending"  # GET changes nothing

    tasks.clear()
    confirmed = client.post(link)
    assert confirmed.status_code == 303
    assert re.fullmatch(r"/preferences/[\w.-]+\?done=confirmed", confirmed.headers["location"])
    active = stored_user(db, user.id)
    assert (active.status, active.confirmed_at, active.next_digest_at) == ("active", NOW, NOW)
    assert tasks == [("paperboy.plan", [])]  # planned now, not at beat's next tick
    with db.session() as session:  # and the row alone makes it due, should that task be lost
        assert len(plan_due(session, NOW)) == 1
    assert "needs no confirmation: its subscription is active" in client.get(link).text
    again = client.post(link)  # idempotent, and it asks for no second planning run
    assert again.status_code == 303 and "done=" not in again.headers["location"]
    assert tasks == [("paperboy.plan", [])]
    assert stored_user(db, user.id).confirmed_at == NOW


def test_the_confirmation_page_then_shows_the_preferences(
    client: TestClient, db: Database, settings: Settings, tasks: Tasks
) -> None:
    sign_up(client)
    [message] = run_confirmations(tasks, db, settings)

    page = client.get(client.post(confirm_link(message)).headers["location"])

    assert page.status_code == 200
    assert "Your subscription is confirmed" in page.text
    assert "speech recognition\nacoustic models</textarea>" in page.text


def test_an_invalid_field_shows_the_form_again_naming_it_and_stores_nothing(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    bad_email = sign_up(client, email="grace at example")
    bad_zone = sign_up(client, timezone="Mars/Olympus_Mons")
    bad_hour = sign_up(client, send_hour="seven")
    nul = sign_up(client, email="grace\x00@example.org")

    assert bad_email.status_code == bad_zone.status_code == bad_hour.status_code == 422
    assert nul.status_code == 422
    assert "email: &#39;grace at example&#39; is not an e-mail address" in bad_email.text
    assert 'value="grace at example"' in bad_email.text  # what was typed is kept
    assert "timezone: unknown time zone" in bad_zone.text
    assert 'id="send_hour" name="send_hour" class="invalid"' in bad_hour.text
    assert user_by_email(db, "grace@example.org") is None
    assert tasks == []


def test_a_malformed_library_is_refused_naming_its_line(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    response = sign_up(client, library="@article{a,\n  title = {Unclosed\n")

    assert response.status_code == 422
    assert "library: line 2: this value" in response.text
    assert user_by_email(db, "grace@example.org") is None


def test_seed_papers_and_a_library_become_seeds_and_interests(
    client: TestClient, db: Database
) -> None:
    with db.session() as session:
        upsert_papers(session, [Paper(title="Attention Is All You Need")], NOW)
        paper_id = ids_by_title(session, ["Attention Is All You Need"])
    library = "@article{a, title={Attention is all you need}, keywords={transformers}}"

    sign_up(client, seeds="attention is all you need\nA paper nobody has\n", library=library)

    user = user_by_email(db, "grace@example.org")
    assert user is not None
    with db.session() as session:
        seeds = session.scalars(select(EventRow).where(EventRow.kind == "seed")).all()
        assert [e.paper_id for e in seeds] == list(paper_id.values())
    assert ("text", "A paper nobody has") in interests_of(db, user.id)
    assert ("keyword", "transformers") in interests_of(db, user.id)


def test_signing_up_an_active_address_answers_alike_and_changes_nothing(
    client: TestClient, db: Database, tasks: Tasks, alice: UserRow
) -> None:
    response = sign_up(client, email="alice@example.org", keywords="knitting")

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert tasks == []
    assert stored_user(db, alice.id).status == "active"
    assert interests_of(db, alice.id) == [("keyword", "nlp")]


def test_the_json_sign_up_answers_202_and_names_invalid_fields(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    body = {
        "email": "hopper@example.org",
        "interests": [{"kind": "keyword", "value": "compilers"}],
        "seeds": ["arXiv:1706.03762"],
        "send_hour": 9,
    }

    accepted = client.post("/subscriptions", json=body)
    bad_email = client.post("/subscriptions", json={**body, "email": "nope"})
    bad_hour = client.post("/subscriptions", json={**body, "send_hour": 25})
    bad_library = client.post("/subscriptions", json={**body, "library": "[{]"})

    assert accepted.status_code == 202
    assert "confirmation link" in accepted.json()["detail"]
    user = user_by_email(db, "hopper@example.org")
    assert user is not None and (user.status, user.send_hour) == ("pending", 9)
    assert tasks == [("paperboy.send_confirmation", [user.id])]
    assert bad_email.status_code == bad_hour.status_code == bad_library.status_code == 422
    assert bad_email.json()["detail"][0]["loc"] == ["body", "email"]
    assert bad_hour.json()["detail"][0]["loc"] == ["body", "send_hour"]
    assert bad_library.json()["detail"][0]["loc"] == ["body", "library"]
    assert "line 1" in bad_library.json()["detail"][0]["msg"]


def test_a_bad_or_misused_confirmation_link_is_a_400_page(
    client: TestClient, links: LinkMaker, alice: UserRow
) -> None:
    misused = path_of(links.preferences(alice.id, alice.created_at)).replace(
        "preferences", "confirm"
    )

    for path in (misused, "/confirm/garbage", "/confirm/a.b"):
        for response in (client.get(path), client.post(path)):
            assert response.status_code == 400
            assert "location" not in response.headers
            assert "invalid or has expired" in response.text


def test_a_confirmation_link_for_a_deleted_or_replaced_account_is_a_404(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    stale = path_of(links.confirm(alice.id, NOW.replace(year=2020)))
    gone = path_of(links.confirm(999999))

    assert client.get(stale).status_code == client.post(gone).status_code == 404
    assert stored_user(db, alice.id).status == "active"


HOSTILE_LIBRARIES = {
    "5000-deep": ("[" * 5000 + "]" * 5000, "nests lists or objects too deeply"),
    "5000-digits": ('[{"title": "T", "page": ' + "9" * 5000 + "}]", "holds a number too long"),
}


@pytest.mark.parametrize("name", HOSTILE_LIBRARIES)
def test_a_hostile_csl_json_library_is_a_422_naming_the_field(
    client: TestClient, db: Database, tasks: Tasks, name: str
) -> None:
    library, reason = HOSTILE_LIBRARIES[name]

    as_json = client.post("/subscriptions", json={"email": "h@example.org", "library": library})
    as_form = sign_up(client, library=library)

    assert as_json.status_code == 422
    [detail] = as_json.json()["detail"]
    assert detail["loc"] == ["body", "library"] and reason in detail["msg"]
    assert as_form.status_code == 422 and f"library: CSL-JSON: {reason}" in as_form.text
    assert user_by_email(db, "h@example.org") is None and tasks == []


@pytest.mark.parametrize(
    "body",
    [b'{"email": "h@example.org", "library": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     b'{"email": "h@example.org", "send_hour": ' + b"9" * 5000 + b"}"],
    ids=["5000-deep", "5000-digits"],
)  # fmt: skip
def test_a_hostile_json_body_is_a_4xx(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/subscriptions", content=body, headers={"content-type": "application/json"}
    )

    assert 400 <= response.status_code < 500


# The mail cannon: limits, origin, honeypot, suppressed and existing addresses ----------------


def test_one_client_gets_a_429_after_its_sign_up_limit(
    db: Database, settings: Settings, tasks: Tasks
) -> None:
    strict = settings.model_copy(update={"signup_limit_per_ip": "2/hour"})
    with TestClient(create_app(strict, clock=lambda: NOW, enqueue=tasks)) as client:
        first = [sign_up(client, email=f"p{i}@example.org") for i in range(2)]
        third = sign_up(client, email="p3@example.org")
        as_json = client.post("/subscriptions", json={"email": "p4@example.org"})

    assert [r.status_code for r in first] == [200, 200]
    assert third.status_code == as_json.status_code == 429
    assert 0 < int(third.headers["retry-after"]) <= 3600
    assert "Too many requests" in third.text and "Too many" in as_json.json()["detail"]
    assert user_by_email(db, "p3@example.org") is None and len(tasks) == 2


def test_an_address_gets_one_confirmation_a_day_and_the_same_answer(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    answers = [sign_up(client) for _ in range(3)]
    answers.append(client.post("/subscriptions", json={"email": "grace@example.org"}))

    assert {r.status_code for r in answers[:3]} == {200}
    assert answers[0].text == answers[1].text == answers[2].text
    assert answers[3].status_code == 202
    user = user_by_email(db, "grace@example.org")
    assert user is not None and tasks == [("paperboy.send_confirmation", [user.id])]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # from a sandboxed frame
        {"Sec-Fetch-Site": "same-site"},  # another host under the same domain
    ],
)
def test_a_form_posted_from_another_site_is_refused(
    client: TestClient, db: Database, tasks: Tasks, headers: dict[str, str]
) -> None:
    response = client.post("/signup", data=FORM, headers=headers)

    assert response.status_code == 403
    assert "another web site" in response.text
    assert user_by_email(db, "grace@example.org") is None and tasks == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # Chromium, under no-referrer
        {"Origin": "http://testserver"},  # a browser without Sec-Fetch-Site
        {},  # not a browser
    ],
)
def test_a_form_posted_from_this_site_is_taken(
    client: TestClient, tasks: Tasks, headers: dict[str, str]
) -> None:
    assert client.post("/signup", data=FORM, headers=headers).status_code == 200
    assert len(tasks) == 1


def test_a_filled_honeypot_is_answered_alike_and_nothing_is_done(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    human = sign_up(client, email="human@example.org")
    bot = sign_up(client, website="https://spam.example")

    assert bot.status_code == 200 and "Check your inbox" in bot.text
    assert 'name="website"' in client.get("/signup").text
    assert user_by_email(db, "grace@example.org") is None
    assert human.status_code == 200 and len(tasks) == 1


@pytest.mark.parametrize("reason", ["bounce", "spamreport", "dropped"])
def test_an_address_suppressed_for_delivery_gets_no_confirmation(
    client: TestClient, db: Database, tasks: Tasks, reason: str
) -> None:
    with db.session() as session:
        suppress(session, "grace@example.org", reason, NOW)

    response = sign_up(client)

    assert response.status_code == 200 and "Check your inbox" in response.text
    assert user_by_email(db, "grace@example.org") is None and tasks == []


@pytest.mark.parametrize("status", ["pending", "unsubscribed"])
def test_a_sign_up_for_an_existing_account_changes_none_of_its_settings(
    client: TestClient, db: Database, tasks: Tasks, alice: UserRow, status: str
) -> None:
    with db.session() as session:
        if status == "unsubscribed":
            unsubscribe(session, alice.id, NOW)
        else:
            session.execute(update(UserRow).where(UserRow.id == alice.id).values(status=status))

    sign_up(client, email="alice@example.org", name="Mallory", keywords="knitting")

    user = stored_user(db, alice.id)
    assert (user.name, user.timezone, user.send_hour) == ("Alice", "UTC", 7)
    assert interests_of(db, alice.id) == [("keyword", "nlp")]
    assert user.status == "pending" and tasks == [("paperboy.send_confirmation", [alice.id])]


@pytest.mark.parametrize(
    "field",
    [
        {"name": "\ud800"},
        {"email": "a\udfff@example.org"},
        {"seeds": ["\ud800"]},
        {"library": "@article{a, title={\ud800}}"},
        {"interests": [{"kind": "keyword", "value": "\ud800"}]},
    ],
    ids=["name", "email", "seeds", "library", "interests"],
)
def test_a_lone_surrogate_is_a_422_naming_the_field(
    client: TestClient, db: Database, field: dict[str, Any]
) -> None:
    body = json.dumps({"email": "s@example.org"} | field).encode()  # escapes it as \\ud800

    response = client.post(
        "/subscriptions", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"][:2] == ["body", next(iter(field))]
    assert user_by_email(db, "s@example.org") is None


def test_the_json_sign_up_cannot_be_posted_as_a_cross_site_simple_request(
    client: TestClient, db: Database, tasks: Tasks
) -> None:
    # A page elsewhere can make a browser POST text/plain without a CORS preflight; the
    # JSON twin reads only application/json, and answers no CORS preflight at all.
    body = b'{"email": "victim@example.org"}'

    plain = client.post("/subscriptions", content=body, headers={"content-type": "text/plain"})
    preflight = client.options(
        "/subscriptions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert plain.status_code == 422
    assert "access-control-allow-origin" not in preflight.headers
    assert user_by_email(db, "victim@example.org") is None and tasks == []
