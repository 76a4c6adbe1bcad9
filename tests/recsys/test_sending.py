from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from recsys.db.models import DigestRow
from recsys.db.session import Database
from recsys.delivery import FileBackend, SendGridBackend
from recsys.digests import plan_due
from recsys.model import load_active_model
from recsys.scoring import rank_digests
from recsys.sending import Outcome, send_digest
from recsys.settings import Settings
from recsys.subscribers import suppress
from recsys.training import train
from tests.conftest import NOW
from tests.fakes.sendgrid import SendGridStandIn
from tests.recsys import world


@pytest.fixture()
def ada_digest(db: Database, settings: Settings) -> int:
    """Ada's ranked digest, ready to send."""
    with db.session() as s:
        ids = world.load(s)
        train(s, settings, NOW)
    model = load_active_model(settings.models_dir, settings.data_dir)
    assert model is not None
    with db.session() as s:
        digest_ids = plan_due(s, NOW)
        rank_digests(s, digest_ids, model, NOW, lookback=timedelta(days=7))
        return s.scalars(select(DigestRow.id).where(DigestRow.user_id == ids["ada"])).one()


@pytest.fixture()
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn() as standin:
        yield standin


def _sendgrid_backend(standin: SendGridStandIn, timeout_s: float = 2.0) -> SendGridBackend:
    return SendGridBackend(api_key=standin.api_key, host=standin.url, timeout_s=timeout_s)


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
