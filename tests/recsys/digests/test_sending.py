import gc
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event, select

from recsys.db.models import DeliveryAttemptRow, DigestItemRow, DigestRow, PaperRow
from recsys.db.session import Database
from recsys.delivery import (
    FileBackend,
    SendGridBackend,
    SendGridTemplateBackend,
    SendResult,
    template_payload,
    template_version,
)
from recsys.delivery.batch import template_data
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.digests.sending import (
    Outcome,
    _claim_lease,
    _collector_paused,
    load_emails,
    send_digest,
    send_digests,
)
from recsys.settings import Settings
from recsys.subscribers.accounts import suppress
from recsys.testing.sendgrid import SendGridStandIn, mail_send_errors
from recsys.training.model import load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world

FROM = "Paperboy <digest@paperboy.example>"


@pytest.fixture()
def ada_digest(db: Database, settings: Settings) -> int:
    """Ada's ranked digest, ready to send."""
    with db.session() as s:
        ids = world.load(s)
        train(s, settings, NOW)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    with db.session() as s:
        digest_ids = plan_due(s, NOW)
        rank_digests(s, digest_ids, model, NOW, lookback=timedelta(days=7))
        return s.scalars(select(DigestRow.id).where(DigestRow.user_id == ids["ada"])).one()


@pytest.fixture()
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn() as standin:
        yield standin


def _sendgrid_backend(
    standin: SendGridStandIn, timeout_s: float = 2.0, concurrency: int = 8
) -> SendGridBackend:
    return SendGridBackend(
        api_key=standin.api_key, host=standin.url, timeout_s=timeout_s, concurrency=concurrency
    )


def _digest(db: Database, digest_id: int) -> DigestRow:
    with db.session() as s:
        row = s.get(DigestRow, digest_id)
        assert row is not None
        return row


def test_it_sends_a_ranked_digest_once(db: Database, settings: Settings, ada_digest: int) -> None:
    backend = FileBackend(settings.outbox_dir)
    first = send_digest(db, backend, settings, ada_digest, NOW)
    second = send_digest(db, backend, settings, ada_digest, NOW)

    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.NOT_CLAIMED)
    row = _digest(db, ada_digest)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, NOW)
    assert row.provider_id == str(Path(settings.outbox_dir) / f"digest-{ada_digest}.eml")
    assert [p.name for p in sorted(Path(settings.outbox_dir).iterdir())] == [
        f"digest-{ada_digest}.eml",
        f"digest-{ada_digest}.html",
    ]


def test_sendgrid_gets_the_digest_id_in_custom_args(
    db: Database, settings: Settings, ada_digest: int, sendgrid: SendGridStandIn
) -> None:
    result = send_digest(db, _sendgrid_backend(sendgrid), settings, ada_digest, NOW)

    assert result.outcome is Outcome.SENT
    (body,) = sendgrid.bodies
    assert body["personalizations"][0]["custom_args"] == {"digest_id": str(ada_digest)}
    assert body["personalizations"][0]["to"][0]["email"] == "ada@example.org"
    assert _digest(db, ada_digest).provider_id == sendgrid.accepted[0].message_id


def test_a_transient_failure_puts_the_digest_back_for_a_retry(
    db: Database, settings: Settings, ada_digest: int, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(429, retry_after=7)
    backend = _sendgrid_backend(sendgrid)

    first = send_digest(db, backend, settings, ada_digest, NOW)
    assert (first.outcome, first.retry_after_s) == (Outcome.RETRY, 7.0)
    assert _digest(db, ada_digest).status == "ranked"

    second = send_digest(db, backend, settings, ada_digest, NOW)
    assert second.outcome is Outcome.SENT
    assert (_digest(db, ada_digest).attempts, len(sendgrid.bodies)) == (2, 1)


def test_a_permanent_failure_is_recorded_and_not_retried(
    db: Database, settings: Settings, ada_digest: int, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(400)
    result = send_digest(db, _sendgrid_backend(sendgrid), settings, ada_digest, NOW)

    assert result.outcome is Outcome.FAILED
    assert _digest(db, ada_digest).status == "failed"


def test_a_failure_is_logged_with_its_digest_id_and_class(
    db: Database,
    settings: Settings,
    ada_digest: int,
    sendgrid: SendGridStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sendgrid.fail_next(400)
    with caplog.at_level(logging.WARNING, logger="recsys.digests.sending"):
        send_digest(db, _sendgrid_backend(sendgrid), settings, ada_digest, NOW)

    [record] = caplog.records
    assert getattr(record, "digest_id", None) == ada_digest
    assert record.getMessage().startswith(f"digest {ada_digest} permanent: ")


def test_a_timeout_after_sending_is_unknown_and_never_resent(
    db: Database, settings: Settings, ada_digest: int
) -> None:
    with SendGridStandIn(hang_s=1.5) as hanging:
        backend = _sendgrid_backend(hanging, timeout_s=0.3)
        first = send_digest(db, backend, settings, ada_digest, NOW)
        second = send_digest(db, backend, settings, ada_digest, NOW)

    assert (first.outcome, second.outcome) == (Outcome.UNKNOWN, Outcome.NOT_CLAIMED)
    assert _digest(db, ada_digest).status == "unknown"


def test_a_suppressed_address_is_skipped(db: Database, settings: Settings, ada_digest: int) -> None:
    with db.session() as s:
        suppress(s, "ada@example.org", "bounce", NOW)
    result = send_digest(db, FileBackend(settings.outbox_dir), settings, ada_digest, NOW)

    assert result.outcome is Outcome.SKIPPED
    assert _digest(db, ada_digest).status == "skipped"
    assert not Path(settings.outbox_dir).exists()


# Attempts on record (issue 4) ---------------------------------------------------------------


def _attempts(db: Database, digest_id: int) -> list[tuple[int, str, str | None]]:
    with db.session() as s:
        rows = s.scalars(
            select(DeliveryAttemptRow)
            .where(DeliveryAttemptRow.digest_id == digest_id)
            .order_by(DeliveryAttemptRow.attempt)
        )
        return [(a.attempt, a.backend, a.outcome) for a in rows]


class _Snooping:
    """A backend that reads the database at the moment of sending, then writes the file."""

    name = "file"

    def __init__(self, db: Database, outbox: Path) -> None:
        self.db, self.inner = db, FileBackend(outbox)
        self.seen: list[object] = []

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        with self.db.session() as s:
            digest = s.get(DigestRow, digest_id)
            attempt = s.scalars(select(DeliveryAttemptRow)).one()
            self.seen.append((digest and digest.status, attempt.attempt, attempt.outcome))
        return self.inner.send(message, digest_id=digest_id)


def test_the_attempt_is_committed_before_the_backend_is_called(
    db: Database, settings: Settings, ada_digest: int
) -> None:
    backend = _Snooping(db, settings.outbox_dir)
    assert send_digest(db, backend, settings, ada_digest, NOW).outcome is Outcome.SENT
    assert backend.seen == [("sending", 1, None)]
    assert _attempts(db, ada_digest) == [(1, "file", "sent")]


def test_each_attempt_is_a_row_with_its_outcome(
    db: Database, settings: Settings, ada_digest: int, sendgrid: SendGridStandIn
) -> None:
    sendgrid.fail_next(503)
    backend = _sendgrid_backend(sendgrid)
    send_digest(db, backend, settings, ada_digest, NOW)
    send_digest(db, backend, settings, ada_digest, NOW)
    assert _attempts(db, ada_digest) == [(1, "sendgrid", "transient"), (2, "sendgrid", "sent")]


def test_an_unknown_attempt_is_recorded_as_unknown(
    db: Database, settings: Settings, ada_digest: int
) -> None:
    with SendGridStandIn(hang_s=1.0) as hanging:
        send_digest(db, _sendgrid_backend(hanging, timeout_s=0.2), settings, ada_digest, NOW)
    assert _attempts(db, ada_digest) == [(1, "sendgrid", "unknown")]


def test_rendered_mode_one_at_a_time_reuses_one_connection(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    backend = _sendgrid_backend(sendgrid, concurrency=1)
    report = send_digests(db, backend, settings, digest_ids, lambda: NOW)

    assert report.ids(Outcome.SENT) == digest_ids
    assert sorted(sendgrid.accepted_digest_ids) == digest_ids
    assert (len(sendgrid.accepted), sendgrid.connections) == (3, 1)


def test_concurrent_rendered_mode_keeps_its_connections_between_calls(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    backend = _sendgrid_backend(sendgrid, concurrency=2)
    send_digests(db, backend, settings, digest_ids[:2], lambda: NOW)
    opened = sendgrid.connections
    report = send_digests(db, backend, settings, digest_ids[2:], lambda: NOW)
    backend.close()

    assert report.ids(Outcome.SENT) == digest_ids[2:]
    assert sorted(sendgrid.accepted_digest_ids) == digest_ids
    assert 1 <= opened <= 2  # at most one per thread
    assert sendgrid.connections == opened  # the second call reused them


# Template mode -------------------------------------------------------------------------------

TEMPLATE_ID = "d-0123456789abcdef"


def _template_backend(standin: SendGridStandIn, batch_size: int = 1000) -> SendGridTemplateBackend:
    return SendGridTemplateBackend(
        standin.api_key, standin.url, 2.0,
        template_id=TEMPLATE_ID, from_email=FROM, batch_size=batch_size,
    )  # fmt: skip


def test_template_mode_sends_many_digests_in_one_request(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    report = send_digests(db, _template_backend(sendgrid), settings, digest_ids, lambda: NOW)

    assert report.ids(Outcome.SENT) == digest_ids
    (accepted,) = sendgrid.accepted
    assert accepted.body["template_id"] == TEMPLATE_ID
    assert accepted.body["categories"] == ["digest"]
    people = accepted.body["personalizations"]
    assert [p["custom_args"] for p in people] == [{"digest_id": str(i)} for i in digest_ids]
    assert all(p["dynamic_template_data"]["items"] for p in people)
    assert all(p["headers"]["List-Unsubscribe"].startswith("<http://testserver/") for p in people)
    with db.session() as s:
        rows = s.scalars(select(DigestRow).where(DigestRow.id.in_(digest_ids))).all()
        assert {(r.status, r.provider_id) for r in rows} == {("sent", accepted.message_id)}


def test_template_mode_splits_into_batches_of_batch_size(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    send_digests(db, _template_backend(sendgrid, batch_size=2), settings, digest_ids, lambda: NOW)
    assert [len(b["personalizations"]) for b in sendgrid.bodies] == [2, 1]


def test_a_transient_failure_puts_the_whole_batch_back(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    sendgrid.fail_next(429, retry_after=3)
    backend = _template_backend(sendgrid)

    first = send_digests(db, backend, settings, digest_ids, lambda: NOW)
    assert (first.ids(Outcome.RETRY), first.retry_after_s()) == (digest_ids, 3.0)
    second = send_digests(db, backend, settings, digest_ids, lambda: NOW)
    assert second.ids(Outcome.SENT) == digest_ids
    assert sendgrid.digest_counts() == {i: 1 for i in digest_ids}


def test_a_suppressed_address_is_left_out_of_the_batch(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    with db.session() as s:
        suppress(s, "ben@example.org", "bounce", NOW)
    report = send_digests(db, _template_backend(sendgrid), settings, digest_ids, lambda: NOW)

    assert len(report.ids(Outcome.SKIPPED)) == 1 and len(report.ids(Outcome.SENT)) == 2
    emails = [p["to"][0]["email"] for p in sendgrid.bodies[0]["personalizations"]]
    assert "ben@example.org" not in emails


def test_the_template_payload_passes_the_stand_in_validation(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    with db.session() as s:
        emails, _ = load_emails(s, settings, digest_ids, NOW)
    payload = template_payload(emails, template_id=TEMPLATE_ID, from_email=FROM)
    assert mail_send_errors(payload) == []
    with pytest.raises(ValueError, match="1 to 1000"):
        template_payload(emails * 334, template_id=TEMPLATE_ID, from_email=FROM)


# {{name}}, {{{name}}}, {{#if name}}, {{#each name}}, once {{!-- comments --}} are removed.
_HANDLEBARS_COMMENT = re.compile(r"\{\{!--.*?--\}\}", re.DOTALL)
_HANDLEBARS_TAG = re.compile(r"\{\{\{?([#/]?)([\w.]+)(?:\s+([\w.]+))?")


def test_every_variable_the_templates_use_is_in_the_template_data(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    with db.session() as s:
        emails, _ = load_emails(s, settings, digest_ids, NOW)
    data = template_data(emails[0])
    version = template_version()
    used = set()
    for source in (version["subject"], version["html_content"], version["plain_content"]):
        for block, word, arg in _HANDLEBARS_TAG.findall(_HANDLEBARS_COMMENT.sub("", source)):
            name = arg if block == "#" else word  # {{#if x}} / {{#each x}} name x
            if block != "/" and name != "else":
                used.add(name.removeprefix("this."))
    top = set(data)
    item = set(data["items"][0])
    assert used - top - item == set()
    assert {"subject", "items", "unsubscribe_url", "click_url", "number"} <= used


def test_after_a_timeout_the_rest_of_the_chunk_waits_for_the_retry(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    with SendGridStandIn(hang_s=1.0) as hanging:
        backend = _sendgrid_backend(hanging, timeout_s=0.2, concurrency=1)
        report = send_digests(db, backend, settings, digest_ids, lambda: NOW)
        assert hanging.attempts == 1  # not one timeout per digest
    assert report.ids(Outcome.UNKNOWN) == digest_ids[:1]
    assert report.ids(Outcome.RETRY) == digest_ids[1:]
    with db.session() as s:
        statuses = [s.get(DigestRow, i).status for i in digest_ids]  # type: ignore[union-attr]
    assert statuses == ["unknown", "ranked", "ranked"]


def test_load_emails_builds_each_digest_from_its_own_items(
    db: Database, settings: Settings, ada_digest: int
) -> None:
    with db.session() as s:
        digest_ids = list(s.scalars(select(DigestRow.id).where(DigestRow.status == "ranked")))
        items = s.execute(
            select(DigestItemRow.digest_id, DigestItemRow.paper_id, DigestItemRow.reason).order_by(
                DigestItemRow.digest_id, DigestItemRow.position
            )
        ).all()
        expected: dict[int, list[tuple[int, str]]] = {d: [] for d in digest_ids}
        for digest_id, paper_id, reason in items:
            if digest_id in expected:
                expected[digest_id].append((paper_id, reason))
        emails, suppressed = load_emails(s, settings, digest_ids, NOW)

    assert len(digest_ids) > 1 and suppressed == []
    assert [e.digest_id for e in emails] == sorted(digest_ids)
    got = {e.digest_id: [(line.paper_id, line.reason) for line in e.items] for e in emails}
    assert got == expected


def test_the_collector_pause_leaves_the_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("the send blew up")
    assert gc.isenabled()

    gc.disable()  # someone else paused it: the pause must not turn it back on
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _give_ada_s_top_paper_arxiv_metadata(db: Database, digest_id: int) -> int:
    with db.session() as s:
        paper_id = s.scalars(
            select(DigestItemRow.paper_id)
            .where(DigestItemRow.digest_id == digest_id)
            .order_by(DigestItemRow.position)
        ).first()
        paper = s.get(PaperRow, paper_id)
        assert paper is not None
        paper.arxiv_id, paper.categories = "2611.01234", ["cs.CV", "cs.LG"]
        paper.published = NOW - timedelta(days=1)
        return paper.id


def test_load_emails_carries_everything_a_digest_shows(
    db: Database, settings: Settings, ada_digest: int
) -> None:
    paper_id = _give_ada_s_top_paper_arxiv_metadata(db, ada_digest)
    with db.session() as s:
        (email,), _ = load_emails(s, settings, [ada_digest], NOW)
        paper = s.get(PaperRow, paper_id)
        row = s.get(DigestRow, ada_digest)
        assert paper is not None and row is not None and row.candidate_mask is not None
        pool = sum(bin(byte).count("1") for byte in row.candidate_mask)
    top = email.items[0]
    assert (top.paper_id, top.abstract) == (paper_id, paper.abstract)
    assert top.categories == ("cs.CV", "cs.LG")
    assert top.published == (NOW - timedelta(days=1)).date()
    assert (top.arxiv_id, top.doi) == ("2611.01234", None)
    assert top.pdf_url == "https://arxiv.org/pdf/2611.01234"  # arXiv's fixed address
    assert email.items[1].pdf_url is None  # no arXiv id, no stored PDF: no link
    assert email.subject == f"Today: {paper.title} and {len(email.items) - 1} more"
    assert email.candidates == pool and pool >= len(email.items)


def test_load_emails_costs_the_same_queries_for_one_digest_or_many(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    assert len(digest_ids) == 3
    assert _statements(db, settings, digest_ids[:1]) == _statements(db, settings, digest_ids) == 4


def _statements(db: Database, settings: Settings, digest_ids: list[int]) -> int:
    """How many SQL statements :func:`load_emails` runs for ``digest_ids``."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with db.session() as s:
        bind = s.get_bind()
        event.listen(bind, "before_cursor_execute", count)
        try:
            load_emails(s, settings, digest_ids, NOW)
        finally:
            event.remove(bind, "before_cursor_execute", count)
    return len(statements)


# Leases (issue 11) ---------------------------------------------------------------------------


class _LeaseWatcher:
    """A file backend that notes, at each send, every digest's (status, lease_until)."""

    name = "file"

    def __init__(self, db: Database, outbox: Path, digest_ids: list[int]) -> None:
        self.db, self.inner, self.ids = db, FileBackend(outbox), digest_ids
        self.seen: list[list[tuple[str, object]]] = []

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        with self.db.session() as s:
            rows = [s.get(DigestRow, i) for i in self.ids]
            self.seen.append([(r.status, r.lease_until) for r in rows if r is not None])
        return self.inner.send(message, digest_id=digest_id)


def test_a_send_holds_its_digests_and_renews_the_lease_of_those_not_reached_yet(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    lease = timedelta(seconds=settings.digest_lease_s)
    ticks = iter([NOW + timedelta(seconds=20) * i for i in range(20)])
    backend = _LeaseWatcher(db, settings.outbox_dir, digest_ids)

    report = send_digests(db, backend, settings, digest_ids, lambda: next(ticks))

    assert report.ids(Outcome.SENT) == digest_ids

    def tick(i: int) -> datetime:
        return NOW + timedelta(seconds=20) * i

    # Ticks: lease all (0), claim the first (1), record it (2); renew (3: 60 s is past half
    # of the lease taken at 0), claim the second (4), record (5); renew (6), claim (7).
    assert backend.seen[0] == [
        ("sending", tick(1) + lease), ("ranked", tick(0) + lease), ("ranked", tick(0) + lease)
    ]  # fmt: skip
    assert backend.seen[1] == [
        ("sent", None), ("sending", tick(4) + lease), ("ranked", tick(3) + lease)
    ]  # fmt: skip
    assert backend.seen[2][2] == ("sending", tick(7) + lease)
    with db.session() as s:
        rows = [s.get(DigestRow, i) for i in digest_ids]
        assert [(r.status, r.lease_until) for r in rows if r] == [("sent", None)] * 3


# Rendered mode, several requests at once (issue 13) -------------------------------------------


def test_a_concurrent_timeout_puts_back_the_digests_whose_request_never_started(
    db: Database, settings: Settings
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    with SendGridStandIn(hang_s=1.0) as hanging:
        backend = _sendgrid_backend(hanging, timeout_s=0.2, concurrency=2)
        report = send_digests(db, backend, settings, digest_ids, lambda: NOW)
        backend.close()
        assert hanging.attempts == 2  # the two in flight together; the third never started

    assert report.ids(Outcome.UNKNOWN) == digest_ids[:2]
    assert report.ids(Outcome.RETRY) == digest_ids[2:]
    with db.session() as s:
        rows = [s.get(DigestRow, i) for i in digest_ids]
        assert [(r.status, r.attempts) for r in rows if r] == [
            ("unknown", 1), ("unknown", 1), ("ranked", 0)
        ]  # fmt: skip
    assert [_attempts(db, i) for i in digest_ids] == [
        [(1, "sendgrid", "unknown")], [(1, "sendgrid", "unknown")], []
    ]  # fmt: skip


def test_concurrent_sends_record_each_digest_s_own_outcome_and_send_each_once(
    db: Database, settings: Settings, sendgrid: SendGridStandIn
) -> None:
    digest_ids = world.ranked_digests(db, settings)
    sendgrid.fail_next(429, retry_after=3)  # whichever request arrives first
    backend = _sendgrid_backend(sendgrid, concurrency=3)
    first = send_digests(db, backend, settings, digest_ids, lambda: NOW)
    (retried,) = first.ids(Outcome.RETRY)
    assert first.retry_after_s() == 3.0
    second = send_digests(db, backend, settings, digest_ids, lambda: NOW)
    backend.close()

    assert sorted(first.ids(Outcome.SENT) + [retried]) == digest_ids
    assert second.ids(Outcome.SENT) == [retried]  # the others were no longer ranked
    assert sorted(sendgrid.accepted_digest_ids) == digest_ids  # each exactly once
    assert _attempts(db, retried) == [(1, "sendgrid", "transient"), (2, "sendgrid", "sent")]
    by_message = {a.message_id: a.body for a in sendgrid.accepted}
    with db.session() as s:
        for digest_id in digest_ids:
            row = s.get(DigestRow, digest_id)
            assert row is not None and row.status == "sent" and row.lease_until is None
            # Each row carries the message id of the request that carried its own digest.
            body = by_message[str(row.provider_id)]
            assert body["personalizations"][0]["custom_args"] == {"digest_id": str(digest_id)}


def test_a_concurrent_group_is_leased_for_one_round_of_timeouts_more(
    settings: Settings,
) -> None:
    backend = SendGridBackend("SG.key", "http://127.0.0.1:9", timeout_s=4.0, concurrency=8)
    lease = timedelta(seconds=settings.digest_lease_s)
    # The group stops at its first unknown outcome: one round of timeouts at most, however
    # many rounds 100 digests take on 8 connections. (Every round's timeout held a killed
    # worker's rows past the two-minute recovery budget.)
    assert _claim_lease(backend, settings, 100) == lease + timedelta(seconds=4.0)
    assert _claim_lease(backend, settings, 8) == lease + timedelta(seconds=4.0)
    assert _claim_lease(FileBackend(Path("unused")), settings, 1) == lease
