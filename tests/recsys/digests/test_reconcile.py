"""Reconciliation: SendGrid events in, and the sweep over stuck and lost outbox rows.

Personas: Alice's digest was sent into a timeout (``unknown``), Bob's worker died mid-send
(``sending``), Carol's digest waits to be sent (``ranked``).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from recsys.db.models import DeliveryAttemptRow, DigestRow, ProviderEventRow, SuppressionRow
from recsys.db.session import Database
from recsys.digests.reconcile import (
    SignatureError,
    SweepPolicy,
    event_watermark,
    ingest_events,
    recheck,
    sweep,
    verify_signature,
)
from recsys.subscribers.accounts import create_user
from tests.conftest import NOW

POLICY = SweepPolicy(stale_after=timedelta(minutes=15), grace=timedelta(minutes=30))


def _digest(
    db: Database,
    email: str,
    status: str,
    *,
    at: datetime = NOW,
    backend: str | None = "sendgrid",
    attempts: int = 1,
) -> int:
    """A digest in ``status`` last touched at ``at``, with one attempt on ``backend``."""
    with db.session() as s:
        user = create_user(s, email, at)
        row = DigestRow(
            user_id=user.id, period="2026-11-21", status=status, attempts=attempts,
            created_at=at, updated_at=at,
        )  # fmt: skip
        s.add(row)
        s.flush()
        if backend is not None:
            s.add(DeliveryAttemptRow(digest_id=row.id, attempt=1, backend=backend, started_at=at))
        return row.id


def _event(
    digest_id: int | None, kind: str = "processed", at: datetime = NOW, **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "email": "alice@example.org",
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": f"{kind}-{digest_id}-{int(at.timestamp())}",
        "sg_message_id": "msg1.filter0",
    }
    if digest_id is not None:
        event["digest_id"] = str(digest_id)
    return event | extra


def _status(db: Database, digest_id: int) -> str:
    with db.session() as s:
        row = s.get(DigestRow, digest_id)
        assert row is not None
        return row.status


def _suppressed(db: Database) -> dict[str, str]:
    with db.session() as s:
        return {r.email: r.reason for r in s.scalars(select(SuppressionRow))}


# Events -----------------------------------------------------------------------------------


def test_an_event_resolves_an_unknown_digest_as_sent(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    with db.session() as s:
        report = ingest_events(s, [_event(alice)], NOW)
    assert (report.new, report.accepted_digests) == (1, 1)
    with db.session() as s:
        row = s.get(DigestRow, alice)
        assert row is not None
        assert (row.status, row.provider_id, row.sent_at) == ("sent", "msg1.filter0", NOW)


def test_the_same_event_twice_is_stored_once(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "sent")
    event = _event(alice, "delivered")
    with db.session() as s:
        first = ingest_events(s, [event, event], NOW)
    with db.session() as s:
        again = ingest_events(s, [event], NOW)
    assert (first.new, first.duplicates, again.new, again.duplicates) == (1, 1, 0, 1)
    with db.session() as s:
        assert len(s.scalars(select(ProviderEventRow)).all()) == 1


def test_a_late_acceptance_stops_a_resend_of_a_requeued_digest(db: Database) -> None:
    carol = _digest(db, "carol@example.org", "ranked")
    with db.session() as s:
        ingest_events(s, [_event(carol)], NOW)
    assert _status(db, carol) == "sent"


def test_a_failed_digest_stays_failed(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "failed")
    with db.session() as s:
        ingest_events(s, [_event(alice)], NOW)
    assert _status(db, alice) == "failed"


def test_bounces_and_spam_reports_suppress_the_address(db: Database) -> None:
    events = [
        _event(None, "bounce", email="Gone@Example.org", type="bounce"),
        _event(None, "bounce", email="busy@example.org", type="blocked"),
        _event(None, "spamreport", email="angry@example.org"),
        _event(None, "dropped", email="old@example.org", reason="Bounced Address"),
        _event(None, "dropped", email="spammy@example.org", reason="Spam Content"),
        _event(None, "open", email="reader@example.org"),
    ]
    events = [e | {"sg_event_id": f"e{i}"} for i, e in enumerate(events)]
    with db.session() as s:
        report = ingest_events(s, events, NOW)
    assert report.suppressed == 3
    assert _suppressed(db) == {
        "gone@example.org": "bounce",
        "angry@example.org": "spamreport",
        "old@example.org": "dropped",
    }


def test_bad_events_are_counted_and_the_rest_stored(db: Database) -> None:
    good = _event(None, "open")
    bad = [
        "not an object",
        {"event": "open", "email": "a@example.org", "timestamp": 1},  # no sg_event_id
        good | {"sg_event_id": "x", "timestamp": "yesterday"},
    ]
    with db.session() as s:
        report = ingest_events(s, [good, *bad], NOW)
    assert (report.received, report.new, len(report.invalid)) == (4, 1, 3)
    assert "sg_event_id" in report.invalid[1]


def test_an_event_for_a_digest_we_do_not_have_is_kept_without_the_link(db: Database) -> None:
    with db.session() as s:
        report = ingest_events(s, [_event(999_999, "delivered")], NOW)
    assert report.new == 1
    with db.session() as s:
        (row,) = s.scalars(select(ProviderEventRow)).all()
        assert (row.digest_id, row.payload["digest_id"]) == (None, "999999")


# Sweep --------------------------------------------------------------------------------------

LATER = NOW + timedelta(hours=1)


def test_the_sweep_hands_back_stale_planned_and_ranked_digests_once(db: Database) -> None:
    planned = _digest(db, "p@example.org", "planned", backend=None)
    carol = _digest(db, "carol@example.org", "ranked", backend=None)
    fresh = _digest(db, "fresh@example.org", "ranked", at=LATER, backend=None)
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert (report.score, report.send) == ([planned], [carol])
    assert fresh not in report.send
    with db.session() as s:
        assert sweep(s, LATER + timedelta(minutes=1), POLICY).send == []  # touched


def test_a_digest_out_of_attempts_fails_with_the_reason(db: Database) -> None:
    carol = _digest(db, "carol@example.org", "ranked", attempts=8)
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert (report.gave_up, report.send) == ([carol], [])
    with db.session() as s:
        row = s.get(DigestRow, carol)
        assert row is not None and row.reason == "gave up after 8 attempts"


def test_an_unknown_send_waits_while_the_event_stream_has_not_moved_on(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    other = _digest(db, "other@example.org", "sent")
    with db.session() as s:
        ingest_events(s, [_event(other, at=NOW + timedelta(minutes=10))], LATER)
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert (report.requeued, report.waiting) == ([], 1)
    assert _status(db, alice) == "unknown"


def test_an_unknown_send_is_resent_once_events_show_it_was_not_taken(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    other = _digest(db, "other@example.org", "sent")
    with db.session() as s:
        ingest_events(s, [_event(other, at=NOW + timedelta(minutes=31))], LATER)
        assert event_watermark(s) == NOW + timedelta(minutes=31)
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert (report.requeued, report.send) == ([alice], [alice])
    assert _status(db, alice) == "ranked"


def test_an_unknown_send_with_an_event_on_file_is_resolved_as_sent(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "sending")
    with db.session() as s:
        s.add(
            ProviderEventRow(
                provider="sendgrid", event_id="e1", digest_id=alice, email="alice@example.org",
                kind="processed", occurred_at=NOW, received_at=NOW, payload={},
            )
        )  # fmt: skip
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert report.accepted == [alice]
    assert _status(db, alice) == "sent"


def test_a_send_in_flight_is_left_alone(db: Database) -> None:
    bob = _digest(db, "bob@example.org", "sending", at=LATER - timedelta(seconds=5))
    with db.session() as s:
        report = sweep(s, LATER, POLICY)
    assert (report.requeued, report.waiting) == ([], 0)
    assert _status(db, bob) == "sending"


def test_a_stuck_file_send_is_simply_redone(db: Database) -> None:
    bob = _digest(db, "bob@example.org", "sending", backend="file")
    with db.session() as s:
        assert sweep(s, LATER, POLICY).requeued == [bob]
    with db.session() as s:
        (attempt,) = s.scalars(select(DeliveryAttemptRow)).all()
        assert (attempt.outcome, attempt.finished_at) == ("unknown", LATER)


def test_an_unknown_smtp_send_waits_for_an_operator(db: Database) -> None:
    _digest(db, "alice@example.org", "unknown", backend="smtp")
    with db.session() as s:
        assert (sweep(s, LATER + timedelta(days=1), POLICY).waiting) == 1


# Leases and the time rule (issue 11) ------------------------------------------------------

# The defaults: a minute's grace, with the Event Webhook configured.
TIMELY = SweepPolicy(
    stale_after=timedelta(minutes=15), grace=timedelta(seconds=60), events_expected=True
)


def _leased(db: Database, digest_id: int, until: datetime) -> None:
    with db.session() as s:
        row = s.get(DigestRow, digest_id)
        assert row is not None
        row.lease_until = until


def _lease_of(db: Database, digest_id: int) -> datetime | None:
    with db.session() as s:
        row = s.get(DigestRow, digest_id)
        assert row is not None
        return row.lease_until


def test_rows_whose_task_died_are_handed_back_once_the_lease_runs_out(db: Database) -> None:
    planned = _digest(db, "p@example.org", "planned", backend=None)
    ranked = _digest(db, "r@example.org", "ranked", backend=None)
    queued = _digest(db, "q@example.org", "ranked", backend=None)  # no lease: not started
    for digest_id in (planned, ranked):
        _leased(db, digest_id, NOW + timedelta(seconds=60))
    with db.session() as s:
        held = sweep(s, NOW + timedelta(seconds=60), TIMELY)
    assert (held.score, held.send) == ([], [])  # still held up to the instant
    with db.session() as s:
        report = sweep(s, NOW + timedelta(seconds=61), TIMELY)
    assert (report.score, report.send) == ([planned], [ranked])
    assert _lease_of(db, ranked) is None and _status(db, queued) == "ranked"
    with db.session() as s:
        assert sweep(s, NOW + timedelta(seconds=62), TIMELY).send == []  # handed back once


def test_a_row_a_task_still_holds_is_not_handed_back_however_old(db: Database) -> None:
    carol = _digest(db, "carol@example.org", "ranked", backend=None)  # untouched since NOW
    _leased(db, carol, LATER + timedelta(seconds=60))  # a retry waiting out its backoff
    with db.session() as s:
        assert sweep(s, LATER, TIMELY).send == []
    assert _lease_of(db, carol) == LATER + timedelta(seconds=60)


def test_a_sending_row_of_a_dead_worker_is_resent_only_after_the_grace(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "sending")  # the attempt started at NOW
    _leased(db, alice, NOW + timedelta(seconds=30))
    with db.session() as s:
        report = sweep(s, NOW + timedelta(seconds=45), TIMELY)
    # Its lease ran out, but the request may have reached SendGrid: wait for its events.
    assert (report.requeued, report.waiting) == ([], 1)
    with db.session() as s:
        report = sweep(s, NOW + timedelta(seconds=61), TIMELY)
    assert (report.requeued, report.send) == ([alice], [alice])
    assert _status(db, alice) == "ranked"


def test_a_sending_row_whose_lease_holds_is_left_alone_however_old(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "sending")
    _leased(db, alice, LATER + timedelta(seconds=1))  # renewed: the worker is alive
    with db.session() as s:
        assert sweep(s, LATER, TIMELY).as_dict()["waiting"] == 0
    assert _status(db, alice) == "sending"


def test_an_unknown_send_with_no_event_within_the_grace_is_resent(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    with db.session() as s:
        early = sweep(s, NOW + timedelta(seconds=60), TIMELY)
    assert (early.requeued, early.waiting) == ([], 1)
    with db.session() as s:
        report = sweep(s, NOW + timedelta(seconds=61), TIMELY)  # no event stream at all
    assert (report.requeued, report.send) == ([alice], [alice])


def test_an_unknown_send_waits_for_the_stream_when_no_webhook_is_configured(
    db: Database,
) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    blind = SweepPolicy(grace=timedelta(seconds=60), events_expected=False)
    with db.session() as s:
        assert sweep(s, LATER + timedelta(days=1), blind).waiting == 1
    assert _status(db, alice) == "unknown"


def test_an_event_on_file_wins_over_the_time_rule(db: Database) -> None:
    alice = _digest(db, "alice@example.org", "unknown")
    with db.session() as s:  # stored, but (as when it came before the reply) not yet acted on
        s.add(
            ProviderEventRow(
                provider="sendgrid", event_id="e1", digest_id=alice, email="alice@example.org",
                kind="processed", occurred_at=NOW, received_at=NOW, payload={},
            )
        )  # fmt: skip
    with db.session() as s:
        report = sweep(s, NOW + timedelta(seconds=61), TIMELY)
    assert (report.accepted, report.requeued) == ([alice], [])
    assert _status(db, alice) == "sent"


# Signatures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _public(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _sign(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_a_signed_body_verifies(signing_key: ec.EllipticCurvePrivateKey) -> None:
    body, stamp = b'[{"event":"open"}]', str(int(NOW.timestamp()))
    verify_signature(_public(signing_key), _sign(signing_key, stamp, body), stamp, body, NOW, 600)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'[{"event":"click"}]'}, "does not match"),
        ({"stamp": str(int(NOW.timestamp()) - 601)}, "more than 600s"),
        ({"signature": None}, "missing"),
        ({"signature": "%%%"}, "malformed"),
    ],
)
def test_a_tampered_stale_or_unsigned_request_is_refused(
    signing_key: ec.EllipticCurvePrivateKey, change: dict[str, Any], reason: str
) -> None:
    body, stamp = b'[{"event":"open"}]', str(int(NOW.timestamp()))
    signed = {"signature": _sign(signing_key, stamp, body), "stamp": stamp, "body": body}
    if "stamp" in change:  # a replay: validly signed, but long ago
        signed["signature"] = _sign(signing_key, change["stamp"], body)
    args = signed | change
    with pytest.raises(SignatureError, match=reason):
        verify_signature(
            _public(signing_key), args["signature"], args["stamp"], args["body"], NOW, 600
        )


def test_a_key_that_is_not_a_key_says_which_setting_is_wrong() -> None:
    with pytest.raises(ValueError, match="PAPERBOY_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        verify_signature("bm90IGEga2V5", "c2ln", str(int(NOW.timestamp())), b"[]", NOW, 600)


def test_after_the_broker_lost_its_queues_unheld_rows_are_re_enqueued_at_once(
    db: Database,
) -> None:
    planned = _digest(db, "p@example.org", "planned", backend=None)
    queued = _digest(db, "q@example.org", "ranked", backend=None)
    held = _digest(db, "h@example.org", "ranked", backend=None)
    _leased(db, held, NOW + timedelta(seconds=60))  # a task is working on it: not lost
    soon = NOW + timedelta(seconds=30)  # far inside stale_after (15 minutes)
    with db.session() as s:
        assert (sweep(s, soon, POLICY).score, sweep(s, soon, POLICY).send) == ([], [])
    with db.session() as s:
        report = sweep(s, soon, POLICY, queues_lost=True)
    assert (report.score, report.send) == ([planned], [queued])
    assert _lease_of(db, held) == NOW + timedelta(seconds=60)


# One digest on an operator's request ----------------------------------------------------


def test_recheck_acts_on_the_one_digest_it_is_given_by_the_sweeps_rules(db: Database) -> None:
    planned = _digest(db, "p@example.org", "planned", backend=None)
    ranked = _digest(db, "r@example.org", "ranked", backend=None)
    lost_send = _digest(db, "f@example.org", "unknown", backend="file")
    other_lost = _digest(db, "g@example.org", "unknown", backend="file")
    with db.session() as s:
        results = [recheck(s, d, LATER, POLICY) for d in (planned, ranked, lost_send)]

    assert [(r.outcome, r.task) for r in results] == [
        ("requeued", "score"),
        ("requeued", "send"),
        ("requeued", "send"),
    ]
    assert _status(db, lost_send) == "ranked"
    assert _status(db, other_lost) == "unknown"  # only the digest asked about


def test_recheck_leaves_a_fresh_or_leased_digest_alone(db: Database) -> None:
    fresh = _digest(db, "fresh@example.org", "ranked", at=LATER, backend=None)
    sending = _digest(db, "s@example.org", "sending")
    with db.session() as s:
        row = s.get(DigestRow, sending)
        assert row is not None
        row.lease_until = LATER + timedelta(minutes=1)  # its worker is still at it
    with db.session() as s:
        results = [recheck(s, d, LATER, POLICY) for d in (fresh, sending, 10**12)]

    assert [r.outcome for r in results] == ["not-stuck"] * 3
    assert (_status(db, fresh), _status(db, sending)) == ("ranked", "sending")
