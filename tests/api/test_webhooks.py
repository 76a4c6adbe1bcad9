"""POST /webhooks/sendgrid: SendGrid's Event Webhook, signed with the stand-in's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from recsys.db.models import DigestRow, ProviderEventRow, SuppressionRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.testing.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, SendGridStandIn
from tests.conftest import NOW

URL = "/webhooks/sendgrid"
STAMP = str(int(NOW.timestamp()))


@pytest.fixture()
def sendgrid() -> SendGridStandIn:
    return SendGridStandIn()  # only its signing key is used: it need not serve


@pytest.fixture()
def webhook(db: Database, settings: Settings, sendgrid: SendGridStandIn) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"sendgrid_webhook_public_key": sendgrid.public_key})
    with TestClient(create_app(configured, clock=lambda: NOW)) as client:
        yield client


def _post(
    client: TestClient, sendgrid: SendGridStandIn, events: list[dict[str, Any]], stamp: str = STAMP
) -> Any:
    body = json.dumps(events).encode()
    headers = {SIGNATURE_HEADER: sendgrid.sign(stamp, body), TIMESTAMP_HEADER: stamp}
    return client.post(URL, content=body, headers=headers | {"Content-Type": "application/json"})


def _event(kind: str, email: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "email": email,
        "timestamp": int(NOW.timestamp()),
        "sg_event_id": event_id,
    } | extra


def test_it_records_events_resolves_the_digest_and_suppresses_a_bounce(
    webhook: TestClient, sendgrid: SendGridStandIn, alice: UserRow, db: Database
) -> None:
    digest = DigestRow(
        user_id=alice.id, period="2026-11-21", status="unknown", created_at=NOW, updated_at=NOW
    )
    with db.session() as s:
        s.add(digest)
    events = [
        _event("processed", "alice@example.org", "e1", digest_id=str(digest.id)),
        _event("bounce", "alice@example.org", "e2", digest_id=str(digest.id), type="bounce"),
    ]
    response = _post(webhook, sendgrid, events)

    assert response.status_code == 200
    assert response.json() | {"invalid": []} == {
        "received": 2, "new": 2, "duplicates": 0, "invalid": [],
        "accepted_digests": 1, "suppressed": 1,
    }  # fmt: skip
    with db.session() as s:
        assert s.get(DigestRow, digest.id).status == "sent"  # type: ignore[union-attr]
        assert s.scalars(select(SuppressionRow.email)).all() == ["alice@example.org"]


def test_a_redelivered_batch_is_stored_once(
    webhook: TestClient, sendgrid: SendGridStandIn, db: Database
) -> None:
    events = [_event("open", "a@example.org", "e1"), _event("click", "a@example.org", "e2")]
    _post(webhook, sendgrid, events)
    again = _post(webhook, sendgrid, events)

    assert (again.status_code, again.json()["duplicates"]) == (200, 2)
    with db.session() as s:
        assert len(s.scalars(select(ProviderEventRow)).all()) == 2


def test_a_forged_body_is_refused(
    webhook: TestClient, sendgrid: SendGridStandIn, db: Database
) -> None:
    signed = json.dumps([_event("open", "a@example.org", "e1")]).encode()
    forged = json.dumps([_event("spamreport", "victim@example.org", "e1")]).encode()
    headers = {SIGNATURE_HEADER: sendgrid.sign(STAMP, signed), TIMESTAMP_HEADER: STAMP}
    response = webhook.post(URL, content=forged, headers=headers)

    assert response.status_code == 403
    assert "does not match" in response.json()["detail"]
    with db.session() as s:
        assert s.scalars(select(SuppressionRow)).all() == []


def test_a_replay_of_an_old_request_is_refused(
    webhook: TestClient, sendgrid: SendGridStandIn
) -> None:
    old = str(int(NOW.timestamp()) - 3600)
    response = _post(webhook, sendgrid, [_event("open", "a@example.org", "e1")], stamp=old)
    assert response.status_code == 403
    assert "from now" in response.json()["detail"]


def test_an_unsigned_request_is_refused(webhook: TestClient) -> None:
    assert webhook.post(URL, json=[]).status_code == 403


def test_a_body_that_is_not_an_array_is_a_bad_request(
    webhook: TestClient, sendgrid: SendGridStandIn
) -> None:
    body = b'{"event": "open"}'
    headers = {SIGNATURE_HEADER: sendgrid.sign(STAMP, body), TIMESTAMP_HEADER: STAMP}
    assert webhook.post(URL, content=body, headers=headers).status_code == 400


def test_without_a_key_the_webhook_is_unavailable_so_sendgrid_retries(
    client: TestClient,
) -> None:
    response = client.post(URL, json=[])
    assert response.status_code == 503
    assert "PAPERBOY_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["detail"]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"timestamp": 1e20}, "'timestamp' 1e+20 is out of range"),
        ({"timestamp": -1}, "'timestamp' -1 is out of range"),
        ({"digest_id": "9" * 23}, "'digest_id' 99999999999999999999999 is out of range"),
        ({"digest_id": str(2**63)}, "'digest_id' 9223372036854775808 is out of range"),
    ],
)
def test_one_bad_element_is_skipped_and_counted_and_the_rest_recorded(
    webhook: TestClient, sendgrid: SendGridStandIn, db: Database, bad: dict[str, Any], named: str
) -> None:
    events = [
        _event("open", "a@example.org", "good1"),
        _event("open", "a@example.org", "bad") | bad,
        _event("bounce", "b@example.org", "good2", type="bounce"),
    ]

    response = _post(webhook, sendgrid, events)

    assert response.status_code == 200
    report = response.json()
    assert (report["received"], report["new"], report["suppressed"]) == (3, 2, 1)
    assert report["invalid"] == [f"event bad: {named}"]
    with db.session() as s:
        stored = s.scalars(select(ProviderEventRow.event_id).order_by(ProviderEventRow.id))
        assert stored.all() == ["good1", "good2"]


def test_nan_in_an_element_invalidates_only_that_element(
    webhook: TestClient, sendgrid: SendGridStandIn
) -> None:
    body = b'[{"event":"open","email":"a@example.org","timestamp":NaN,"sg_event_id":"n"}]'
    headers = {SIGNATURE_HEADER: sendgrid.sign(STAMP, body), TIMESTAMP_HEADER: STAMP}

    response = webhook.post(URL, content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["invalid"] == ["event n: 'timestamp' must be a Unix time"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"[" * 5000 + b"]" * 5000, "nests too deeply"), (b"[" + b"9" * 5000 + b"]", "not JSON")],
    ids=["5000-deep", "5000-digits"],
)
def test_a_signed_body_too_deep_or_with_a_huge_number_is_a_bad_request(
    webhook: TestClient, sendgrid: SendGridStandIn, body: bytes, detail: str
) -> None:
    headers = {SIGNATURE_HEADER: sendgrid.sign(STAMP, body), TIMESTAMP_HEADER: STAMP}

    response = webhook.post(URL, content=body, headers=headers)

    assert response.status_code == 400
    assert detail in response.json()["detail"]


@pytest.mark.parametrize("stamp", ["9" * 400, "1e9", "-1"], ids=["400-digits", "float", "negative"])
def test_a_timestamp_header_that_is_not_a_time_is_refused(
    webhook: TestClient, sendgrid: SendGridStandIn, stamp: str
) -> None:
    response = _post(webhook, sendgrid, [_event("open", "a@example.org", "e1")], stamp=stamp)

    assert response.status_code == 403
    assert "malformed" in response.json()["detail"]


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["NUL", "lone-surrogate"])
def test_an_element_holding_text_no_database_stores_is_skipped(
    webhook: TestClient, sendgrid: SendGridStandIn, db: Database, bad: str
) -> None:
    events = [
        _event("open", "a@example.org", "good"),
        _event("open", "a@example.org", "bad", useragent=f"x{bad}y"),
    ]

    response = _post(webhook, sendgrid, events)

    assert response.status_code == 200
    assert response.json()["invalid"] == [
        "event bad: holds a NUL or a lone surrogate, which is not text"
    ]
    with db.session() as s:
        assert s.scalars(select(ProviderEventRow.event_id)).all() == ["good"]
