"""/admin: the login, the session cookie, CSRF, and the actions through the page."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.admin_session import COOKIE
from api.app import create_app
from recsys.db.models import (
    DeliveryAttemptRow,
    DigestRow,
    EventRow,
    ExperimentRow,
    ProviderEventRow,
    UserRow,
)
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import store
from tests.api.conftest import Tasks, stored_user
from tests.conftest import NOW
from tests.recsys.training.conftest import Host, publish_version

KEY = "test-admin-key"


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture()
def web(db: Database, settings: Settings, tasks: Tasks, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, enqueue=tasks)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def log_in(client: TestClient) -> str:
    """Log in through the form; the CSRF token of the page it leads to."""
    response = client.post("/admin/login", data={"key": KEY})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/admin").text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def add_user(db: Database, email: str, status: str = "active", name: str | None = None) -> int:
    with db.session() as session:
        user = UserRow(email=email, name=name, status=status, created_at=NOW)
        session.add(user)
        session.flush()
        return user.id


def add_digest(
    db: Database, user_id: int, status: str, created_at: datetime, **extra: object
) -> int:
    with db.session() as session:
        row = DigestRow(
            user_id=user_id,
            period=uuid.uuid4().hex,  # unique per (user, period); nothing here reads it
            status=status,
            created_at=created_at,
            updated_at=extra.pop("updated_at", created_at),
            **extra,
        )
        session.add(row)
        session.flush()
        return row.id


def digest_status(db: Database, digest_id: int) -> str:
    with db.session() as session:
        row = session.get(DigestRow, digest_id)
        assert row is not None
        return row.status


# Login and the session ----------------------------------------------------------------------


def test_it_shows_a_login_form_that_posts_the_key_without_a_session(web: TestClient) -> None:
    response = web.get("/admin")

    assert response.status_code == 200
    assert '<form method="post" action="/admin/login">' in response.text
    assert 'type="password"' in response.text
    assert "Subscribers" not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_it_logs_in_with_the_key_and_sets_a_strict_http_only_cookie(web: TestClient) -> None:
    response = web.post("/admin/login", data={"key": KEY})

    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE}=")
    for part in ("httponly", "samesite=strict", "path=/admin", "max-age=28800", "expires="):
        assert part in cookie
    assert "secure" not in cookie  # plain http here
    assert KEY not in response.headers["set-cookie"]
    assert "Subscribers" in web.get("/admin").text


def test_the_cookie_is_secure_when_the_site_is_served_over_https(
    db: Database, settings: Settings
) -> None:
    https = settings.model_copy(update={"public_base_url": "https://paperboy.example.org"})
    with TestClient(create_app(https, clock=lambda: NOW), follow_redirects=False) as client:
        response = client.post("/admin/login", data={"key": KEY})

    assert "; secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("typed", ["wrong-key", KEY + " ", "", "clé"])
def test_a_wrong_key_is_the_form_again_with_an_error_and_401(web: TestClient, typed: str) -> None:
    response = web.post("/admin/login", data={"key": typed})

    assert response.status_code == 401
    assert "That is not the admin key." in response.text
    assert "set-cookie" not in response.headers
    assert "Subscribers" not in web.get("/admin").text


def test_a_login_without_the_key_field_is_refused(web: TestClient) -> None:
    assert web.post("/admin/login", data={}).status_code == 401


def test_logins_are_rate_limited_per_client(db: Database, settings: Settings) -> None:
    limited = settings.model_copy(update={"signup_limit_per_ip": "2/minute"})
    with TestClient(create_app(limited, clock=lambda: NOW), follow_redirects=False) as client:
        codes = [client.post("/admin/login", data={"key": "guess"}).status_code for _ in range(3)]
        right_key_too = client.post("/admin/login", data={"key": KEY})

    assert codes == [401, 401, 429]
    assert right_key_too.status_code == 429
    assert int(right_key_too.headers["retry-after"]) > 0


def test_admin_says_it_is_disabled_when_no_key_is_configured(
    db: Database, settings: Settings
) -> None:
    off = settings.model_copy(update={"admin_api_key": None})
    with TestClient(create_app(off, clock=lambda: NOW), follow_redirects=False) as client:
        page = client.get("/admin")
        login = client.post("/admin/login", data={"key": ""})

    assert page.status_code == 503
    assert "set PAPERBOY_ADMIN_API_KEY" in page.text
    assert login.status_code == 503


def test_a_tampered_cookie_is_no_session(web: TestClient) -> None:
    log_in(web)
    good = web.cookies[COOKIE]
    body, _, mac = good.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged_body = base64.urlsafe_b64encode(payload.replace(b'"e":', b'"e":9')).rstrip(b"=")

    web.cookies.clear()
    web.cookies.set(COOKIE, good, path="/admin")
    assert "Subscribers" in web.get("/admin").text  # a cookie set by hand is read
    flipped = mac[:5] + ("B" if mac[5] != "B" else "C") + mac[6:]  # a data character of the MAC
    for bad in (f"{body}.{flipped}", f"{forged_body.decode()}.{mac}", body, "x"):
        web.cookies.clear()
        web.cookies.set(COOKIE, bad, path="/admin")
        assert "Subscribers" not in web.get("/admin").text, bad


def test_a_session_ends_after_eight_hours(web: TestClient, clock: Clock) -> None:
    log_in(web)
    clock.now = NOW + timedelta(hours=7, minutes=59)
    assert "Subscribers" in web.get("/admin").text

    clock.now = NOW + timedelta(hours=8, seconds=1)
    assert "Subscribers" not in web.get("/admin").text


def test_changing_the_admin_key_ends_every_session(
    db: Database, settings: Settings, web: TestClient
) -> None:
    log_in(web)
    cookie = web.cookies[COOKIE]
    changed = settings.model_copy(update={"admin_api_key": "a-new-admin-key"})
    with TestClient(create_app(changed, clock=lambda: NOW)) as other:
        other.cookies.set(COOKIE, cookie, path="/admin")
        assert "Subscribers" not in other.get("/admin").text


def test_logout_ends_the_session(web: TestClient) -> None:
    csrf = log_in(web)

    response = web.post("/admin/logout", data={"csrf": csrf})

    assert response.status_code == 303
    assert "Subscribers" not in web.get("/admin").text


def test_the_page_runs_under_the_strict_policy_with_its_own_style_hashed(web: TestClient) -> None:
    log_in(web)
    response = web.get("/admin")

    style = re.search(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    csp = response.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp
    assert "<script" not in response.text
    assert 'name="viewport"' in response.text
    assert " style=" not in response.text  # inline style attributes would be refused


# CSRF ---------------------------------------------------------------------------------------


def test_an_action_without_a_csrf_token_is_refused_and_changes_nothing(
    web: TestClient, db: Database, alice: UserRow
) -> None:
    log_in(web)

    response = web.post(f"/admin/subscribers/{alice.id}/pause", data={})

    assert response.status_code == 403
    assert stored_user(db, alice.id).status == "active"


def test_a_csrf_token_from_another_session_is_refused(
    web: TestClient, db: Database, settings: Settings, alice: UserRow
) -> None:
    log_in(web)
    with TestClient(create_app(settings, clock=lambda: NOW), follow_redirects=False) as other:
        other_csrf = log_in(other)

    for forged in (other_csrf, "0" * 64, other_csrf[:-1]):
        response = web.post(f"/admin/subscribers/{alice.id}/pause", data={"csrf": forged})
        assert response.status_code == 403
    assert stored_user(db, alice.id).status == "active"


def test_an_action_from_another_site_is_refused_even_with_the_token(
    web: TestClient, db: Database, alice: UserRow
) -> None:
    csrf = log_in(web)

    response = web.post(
        f"/admin/subscribers/{alice.id}/pause",
        data={"csrf": csrf},
        headers={"Sec-Fetch-Site": "cross-site"},
    )

    assert response.status_code == 403
    assert stored_user(db, alice.id).status == "active"


def test_an_action_without_a_session_is_refused(
    web: TestClient, db: Database, alice: UserRow
) -> None:
    response = web.post(f"/admin/subscribers/{alice.id}/pause", data={"csrf": "0" * 64})

    assert response.status_code == 401
    assert stored_user(db, alice.id).status == "active"


# Actions through the page ---------------------------------------------------------------------


def test_it_pauses_and_resumes_a_subscriber(web: TestClient, db: Database, alice: UserRow) -> None:
    csrf = log_in(web)

    paused = web.post(f"/admin/subscribers/{alice.id}/pause", data={"csrf": csrf, "q": "alice"})
    assert paused.status_code == 303
    assert paused.headers["location"] == f"/admin?done=paused&id={alice.id}&q=alice"
    assert stored_user(db, alice.id).status == "paused"
    assert f"Subscriber {alice.id} is paused." in web.get(paused.headers["location"]).text

    resumed = web.post(f"/admin/subscribers/{alice.id}/resume", data={"csrf": csrf})
    assert stored_user(db, alice.id).status == "active"
    assert "done=resumed" in resumed.headers["location"]


def test_pausing_someone_who_is_gone_says_so(web: TestClient) -> None:
    csrf = log_in(web)

    response = web.post("/admin/subscribers/999/pause", data={"csrf": csrf})

    assert "done=gone" in response.headers["location"]


def test_it_deletes_a_subscriber_everywhere_only_once_confirmed(
    web: TestClient, db: Database, alice: UserRow, digest: DigestRow, settings: Settings
) -> None:
    outbox = settings.data_dir / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    kept_mail = outbox / f"digest-{digest.id}.eml"
    kept_mail.write_text("a copy of Alice's digest")
    csrf = log_in(web)

    unconfirmed = web.post(f"/admin/subscribers/{alice.id}/delete", data={"csrf": csrf})
    assert "done=not-deleted" in unconfirmed.headers["location"]
    assert stored_user(db, alice.id).email == "alice@example.org"

    web.post(f"/admin/subscribers/{alice.id}/delete", data={"csrf": csrf, "confirm": "yes"})

    with db.session() as session:
        assert session.get(UserRow, alice.id) is None
        assert session.scalar(select(func.count()).select_from(DigestRow)) == 0
        assert session.scalar(select(func.count()).select_from(EventRow)) == 0
    assert not kept_mail.exists()  # the same deletion as the subscriber's own


def test_recheck_marks_an_unknown_digest_sent_on_a_provider_event(
    web: TestClient, db: Database, alice: UserRow, tasks: Tasks
) -> None:
    digest_id = add_digest(db, alice.id, "unknown", NOW - timedelta(hours=1))
    with db.session() as session:
        session.add(
            ProviderEventRow(
                provider="sendgrid", event_id="ev-1", digest_id=digest_id,
                email=alice.email, kind="delivered", occurred_at=NOW, received_at=NOW,
                payload={},
            )
        )  # fmt: skip
    csrf = log_in(web)
    assert f'action="/admin/digests/{digest_id}/recheck"' in web.get("/admin").text

    response = web.post(f"/admin/digests/{digest_id}/recheck", data={"csrf": csrf})

    assert "done=recheck-sent" in response.headers["location"]
    assert digest_status(db, digest_id) == "sent"
    assert tasks == []


def test_recheck_sends_again_only_what_provably_was_not_sent(
    web: TestClient, db: Database, alice: UserRow, tasks: Tasks
) -> None:
    started = NOW - timedelta(hours=1)
    by_file = add_digest(db, alice.id, "unknown", started, reason="file")
    by_smtp = add_digest(db, alice.id, "unknown", started, reason="smtp")
    with db.session() as session:
        for digest_id, backend in ((by_file, "file"), (by_smtp, "smtp")):
            session.add(
                DeliveryAttemptRow(
                    digest_id=digest_id, attempt=1, backend=backend, started_at=started
                )
            )
    csrf = log_in(web)

    file_answer = web.post(f"/admin/digests/{by_file}/recheck", data={"csrf": csrf})
    smtp_answer = web.post(f"/admin/digests/{by_smtp}/recheck", data={"csrf": csrf})

    assert "done=recheck-requeued" in file_answer.headers["location"]
    assert digest_status(db, by_file) == "ranked"
    assert tasks == [("paperboy.send", [[by_file]])]
    # SMTP reports nothing later: resending could deliver it twice, so it waits.
    assert "done=recheck-waiting" in smtp_answer.headers["location"]
    assert digest_status(db, by_smtp) == "unknown"


def test_recheck_of_a_finished_digest_does_nothing(
    web: TestClient, db: Database, digest: DigestRow, tasks: Tasks
) -> None:
    csrf = log_in(web)

    response = web.post(f"/admin/digests/{digest.id}/recheck", data={"csrf": csrf})

    assert "done=recheck-not-stuck" in response.headers["location"]
    assert digest_status(db, digest.id) == "sent"
    assert tasks == []


# What the page shows ----------------------------------------------------------------------


def cell(html: str, status: str, column: str) -> int:
    match = re.search(
        rf'<tr data-status="{status}">.*?class="n today">(\d+)<.*?class="n week">(\d+)<', html
    )
    assert match, status
    return int(match.group(1 if column == "today" else 2))


def test_it_counts_todays_and_this_weeks_digests_by_status(
    web: TestClient, db: Database, alice: UserRow
) -> None:
    today = NOW.replace(hour=0, minute=30)
    for status, when in [
        ("sent", today), ("sent", today), ("failed", today),
        ("sent", NOW - timedelta(days=3)), ("skipped", NOW - timedelta(days=6)),
        ("sent", NOW - timedelta(days=7)),  # before the window
        ("sent", today - timedelta(hours=1)),  # yesterday, UTC
    ]:  # fmt: skip
        add_digest(db, alice.id, status, when)
    log_in(web)

    html = web.get("/admin").text

    assert (cell(html, "sent", "today"), cell(html, "sent", "week")) == (2, 4)
    assert (cell(html, "failed", "today"), cell(html, "failed", "week")) == (1, 1)
    assert (cell(html, "skipped", "today"), cell(html, "skipped", "week")) == (0, 1)
    assert re.search(r'id="week-total">6<', html)
    # Today: sent and failed stacked; yesterday, 3 and 6 days ago: one status each.
    assert html.count("<rect x=") == 5


def test_it_counts_bounces_and_spam_reports(web: TestClient, db: Database, alice: UserRow) -> None:
    with db.session() as session:
        for i, (kind, when) in enumerate(
            [
                ("bounce", NOW),
                ("bounce", NOW - timedelta(days=30)),
                ("spamreport", NOW),
                ("delivered", NOW),
            ]
        ):
            session.add(
                ProviderEventRow(
                    provider="sendgrid", event_id=f"e{i}", email=f"<b>{i}@example.org",
                    kind=kind, occurred_at=when, received_at=when, payload={"reason": "550"},
                )
            )  # fmt: skip
    log_in(web)

    html = web.get("/admin").text

    assert 'id="bounces-week">1<' in html
    assert 'id="spam-week">1<' in html
    assert "Since the start: 2 bounces, 1 spam reports." in html
    assert "&lt;b&gt;0@example.org" in html


def test_it_shows_the_active_model_with_its_guardrail_metrics(
    web: TestClient, settings: Settings, db: Database
) -> None:
    manifest = {"created_at": NOW.isoformat(), "guardrail": {"recall_at_10": 0.213, "passed": True}}
    host = Host(settings.data_dir / "trainer")
    with db.session() as s:
        publish_version(s, host, "v-guarded", manifest)
        publish_version(s, host, "v-plain")
        store.activate(s, "v-guarded", NOW)
    log_in(web)

    html = web.get("/admin").text
    assert "<dd>v-guarded</dd>" in html
    assert '<td>recall_at_10</td><td class="n">0.213</td>' in html

    with db.session() as s:
        store.activate(s, "v-plain", NOW)
    html = web.get("/admin").text
    assert "<dd>v-plain</dd>" in html
    assert "records no guard-rail metrics" in html


def test_it_shows_the_running_experiment(web: TestClient, db: Database) -> None:
    variants = [{"name": "control", "allocation": 0.5}, {"name": "<i>wide</i>", "allocation": 0.5}]
    with db.session() as session:
        session.add(ExperimentRow(name="explore-2", salt="s", variants=variants, created_at=NOW))
    log_in(web)

    html = web.get("/admin").text

    assert "<dd>explore-2</dd>" in html
    assert "control (0.5), &lt;i&gt;wide&lt;/i&gt; (0.5)" in html


def test_search_takes_percent_and_underscore_literally(web: TestClient, db: Database) -> None:
    for email in (
        "a_b@example.org",
        "axb@example.org",
        "100%sure@example.org",
        "back\\slash@example.org",
    ):
        add_user(db, email)
    log_in(web)

    def found(q: str) -> list[str]:
        html = web.get("/admin", params={"q": q}).text
        return sorted(re.findall(r'<tr data-user="\d+"><td>\d+</td><td>([^<]+)</td>', html))

    assert found("a_b") == ["a_b@example.org"]
    assert found("_") == ["a_b@example.org"]
    assert found("%") == ["100%sure@example.org"]
    assert found("\\") == ["back\\slash@example.org"]
    assert found("AXB") == ["axb@example.org"]
    assert len(found("")) == 4


def test_search_is_paginated(web: TestClient, db: Database) -> None:
    for i in range(30):
        add_user(db, f"reader{i:02d}@example.org")
    log_in(web)

    first = web.get("/admin", params={"q": "reader"}).text
    second = web.get("/admin", params={"q": "reader", "page": 2}).text

    assert first.count("<tr data-user=") == 25
    assert second.count("<tr data-user=") == 5
    assert "30 subscribers matching" in first
    assert 'href="/admin?q=reader&amp;page=2"' in first


def test_a_hostile_subscriber_name_and_query_are_escaped(web: TestClient, db: Database) -> None:
    add_user(db, "mallory@example.org", name="<script>alert(1)</script>")
    log_in(web)

    html = web.get("/admin", params={"q": '"><script>x</script>'}).text
    html_all = web.get("/admin").text

    assert "<script>" not in html + html_all
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_all
    assert "&#34;&gt;&lt;script&gt;x&lt;/script&gt;" in html


def test_an_over_long_query_is_a_clear_422(web: TestClient) -> None:
    log_in(web)

    response = web.get("/admin", params={"q": "x" * 400})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "q"]
