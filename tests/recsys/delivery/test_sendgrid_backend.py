"""SendGrid: the request body, and the real backend against the stand-in server."""

from __future__ import annotations

import pickle
import socket
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from recsys.delivery.backends import (
    DeliveryError,
    FileBackend,
    SendGridBackend,
    SmtpBackend,
    classify_http_failure,
    make_backend,
    sendgrid_payload,
)
from recsys.delivery.compose import html_part, text_part
from recsys.testing.sendgrid import SendGridStandIn, mail_send_errors

TIMEOUT_S = 5.0  # generous: only the hang test wants a timeout to fire


@pytest.fixture()
def sendgrid_stand_in() -> Iterator[SendGridStandIn]:
    with SendGridStandIn() as stand_in:
        yield stand_in


@pytest.fixture()
def backend(sendgrid_stand_in: SendGridStandIn) -> SendGridBackend:
    return SendGridBackend(sendgrid_stand_in.api_key, sendgrid_stand_in.url, TIMEOUT_S)


# The request body ----------------------------------------------------------------------


def test_payload_puts_recipient_and_string_digest_id_in_the_personalization(
    message: EmailMessage,
) -> None:
    payload = sendgrid_payload(message, 42, ("digest",))
    assert payload["personalizations"] == [
        {
            "to": [{"email": "ada@example.org", "name": "Ada Lovelace"}],
            "custom_args": {"digest_id": "42"},
        }
    ]
    assert "custom_args" not in payload


def test_payload_carries_sender_subject_both_parts_headers_and_categories(
    message: EmailMessage,
) -> None:
    payload = sendgrid_payload(message, 42, ("digest", "weekly"))
    assert payload["from"] == {"email": "digest@paperboy.example", "name": "Paperboy"}
    assert payload["subject"] == "Your papers for Saturday 21 November 2026"
    assert payload["content"] == [
        {"type": "text/plain", "value": text_part(message)},
        {"type": "text/html", "value": html_part(message)},
    ]
    assert payload["headers"] == {
        "List-Id": "Paperboy digests <digest.paperboy.example>",
        "List-Unsubscribe": "<https://paperboy.example/u/42?sig=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert payload["categories"] == ["digest", "weekly"]


def test_payload_leaves_out_the_name_of_a_recipient_without_one(message: EmailMessage) -> None:
    message.replace_header("To", "ada@example.org")
    payload = sendgrid_payload(message, 1, ())
    assert payload["personalizations"][0]["to"] == [{"email": "ada@example.org"}]


def test_payload_passes_the_stand_in_validation(message: EmailMessage) -> None:
    assert mail_send_errors(sendgrid_payload(message, 42, ("digest",))) == []


# Against the stand-in -----------------------------------------------------------------


def test_a_send_returns_the_message_id_and_sendgrid_got_the_payload(
    backend: SendGridBackend, sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    result = backend.send(message, digest_id=42)

    [accepted] = sendgrid_stand_in.accepted
    assert result.provider_id == accepted.message_id
    assert accepted.body == sendgrid_payload(message, 42, ("digest",))


def test_each_send_gets_its_own_message_id(backend: SendGridBackend, message: EmailMessage) -> None:
    ids = {backend.send(message, digest_id=i).provider_id for i in range(3)}
    assert len(ids) == 3


def test_a_wrong_api_key_is_permanent(
    sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    backend = SendGridBackend("SG.wrong", sendgrid_stand_in.url, TIMEOUT_S)
    with pytest.raises(DeliveryError, match="HTTP 401") as caught:
        backend.send(message, digest_id=42)
    assert not caught.value.transient and not caught.value.unknown


def test_rate_limiting_is_transient_and_honours_retry_after(
    backend: SendGridBackend, sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    sendgrid_stand_in.fail_next(429, retry_after=7)
    with pytest.raises(DeliveryError) as caught:
        backend.send(message, digest_id=42)
    assert caught.value.transient
    assert caught.value.retry_after_s == 7.0
    assert "digest 42" in str(caught.value)


def test_a_server_error_is_transient_and_the_retry_goes_through(
    backend: SendGridBackend, sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    sendgrid_stand_in.fail_next(500)
    with pytest.raises(DeliveryError) as caught:
        backend.send(message, digest_id=42)
    assert caught.value.transient and not caught.value.unknown

    assert backend.send(message, digest_id=42).provider_id is not None
    assert sendgrid_stand_in.attempts == 2
    assert len(sendgrid_stand_in.accepted) == 1


def test_a_bad_request_is_permanent_and_keeps_sendgrids_reason(
    backend: SendGridBackend, sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    sendgrid_stand_in.fail_next(400)
    with pytest.raises(DeliveryError, match="HTTP 400.*Injected failure 400") as caught:
        backend.send(message, digest_id=42)
    assert not caught.value.transient and not caught.value.unknown


def test_a_reply_slower_than_the_timeout_is_unknown_not_retryable(
    sendgrid_stand_in: SendGridStandIn, message: EmailMessage
) -> None:
    backend = SendGridBackend(sendgrid_stand_in.api_key, sendgrid_stand_in.url, timeout_s=0.2)
    sendgrid_stand_in.hang_s = 5.0
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        backend.send(message, digest_id=42)

    assert time.monotonic() - started < 3.0
    assert caught.value.unknown and not caught.value.transient
    # Why "unknown" is the right answer: SendGrid did take the message.
    assert len(sendgrid_stand_in.accepted) == 1


def test_a_refused_connection_is_transient(message: EmailMessage) -> None:
    backend = SendGridBackend("SG.key", f"http://127.0.0.1:{_closed_port()}", TIMEOUT_S)
    with pytest.raises(DeliveryError, match="could not reach") as caught:
        backend.send(message, digest_id=42)
    assert caught.value.transient and not caught.value.unknown


def test_random_failures_follow_the_seed(message: EmailMessage) -> None:
    def outcomes() -> list[bool]:
        with SendGridStandIn(failure_rate=0.5, seed=1) as stand_in:
            backend = SendGridBackend(stand_in.api_key, stand_in.url, TIMEOUT_S)
            return [_sent(backend, message) for _ in range(10)]

    first = outcomes()
    assert first == outcomes()
    assert True in first and False in first


def _sent(backend: SendGridBackend, message: EmailMessage) -> bool:
    try:
        backend.send(message, digest_id=1)
    except DeliveryError as error:
        assert error.transient  # drawn from 429/500/503
        return False
    return True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# The stand-in's own checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"personalizations": []}, "personalizations"),
        ({"personalizations": [{"to": []}]}, "'to' array"),
        ({"from": {}}, "from object"),
        ({"subject": ""}, "subject"),
        ({"content": []}, "content"),
        ({"custom_args": {"digest_id": "1"}}, "custom_args"),
    ],
)
def test_stand_in_rejects_what_sendgrid_rejects(
    message: EmailMessage, change: dict[str, object], complaint: str
) -> None:
    body = sendgrid_payload(message, 42, ("digest",)) | change
    errors = mail_send_errors(body)
    assert len(errors) == 1 and complaint in errors[0]


# Classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "request_sent", "retry_after", "transient", "unknown", "wait"),
    [
        (429, True, "30", True, False, 30.0),
        (429, True, None, True, False, None),
        (429, True, "Wed, 21 Oct 2026 07:28:00 GMT", True, False, None),
        (500, True, None, True, False, None),
        (502, True, None, True, False, None),
        (503, True, "1.5", True, False, 1.5),
        (503, True, "-1", True, False, None),
        (503, True, "inf", True, False, None),
        (400, True, None, False, False, None),
        (401, True, None, False, False, None),
        (403, True, None, False, False, None),
        (413, True, None, False, False, None),
        (None, False, None, True, False, None),
        (None, True, None, False, True, None),
    ],
)
def test_classify_http_failure(
    status: int | None,
    request_sent: bool,
    retry_after: str | None,
    transient: bool,
    unknown: bool,
    wait: float | None,
) -> None:
    error = classify_http_failure(status, request_sent=request_sent, retry_after=retry_after)
    assert (error.transient, error.unknown, error.retry_after_s) == (transient, unknown, wait)


def test_a_delivery_error_survives_pickling_with_its_classification() -> None:
    error = DeliveryError("HTTP 429", transient=True, retry_after_s=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.transient, copy.unknown, copy.retry_after_s) == (
        "HTTP 429",
        True,
        False,
        3.0,
    )


def test_an_error_cannot_be_both_transient_and_unknown() -> None:
    with pytest.raises(ValueError):
        DeliveryError("x", transient=True, unknown=True)


# Factory --------------------------------------------------------------------------------


def _make(kind: str, api_key: str | None = "SG.key") -> object:
    return make_backend(
        kind,
        outbox_dir=Path("outbox"),
        sendgrid_api_key=api_key,
        sendgrid_api_host="https://api.sendgrid.com",
        sendgrid_timeout_s=10.0,
        smtp_url="smtp://localhost:25",
    )


def test_make_backend_builds_each_kind() -> None:
    assert isinstance(_make("file"), FileBackend)
    assert isinstance(_make("sendgrid"), SendGridBackend)
    assert isinstance(_make("smtp"), SmtpBackend)


def test_make_backend_refuses_sendgrid_without_a_key_and_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="PAPERBOY_SENDGRID_API_KEY"):
        _make("sendgrid", api_key=None)
    with pytest.raises(ValueError, match="unknown email backend 'pigeon'"):
        _make("pigeon")
