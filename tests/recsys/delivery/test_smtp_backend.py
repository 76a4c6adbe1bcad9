"""The SMTP backend against a minimal SMTP responder started in this module.

``smtpd`` left the standard library and ``aiosmtpd`` is not a dependency, so
:class:`SmtpResponder` below speaks just enough SMTP for smtplib (EHLO, AUTH PLAIN, MAIL,
RCPT, DATA, QUIT) and can be told to answer any step with a chosen reply or hang up.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from recsys.delivery.backends import DeliveryError, SmtpBackend
from recsys.delivery.compose import text_part
from tests.recsys.delivery.conftest import unsubscribe_header_line

HANG_UP = "hang up"


class SmtpResponder(socketserver.ThreadingTCPServer):
    """SMTP on 127.0.0.1 (free port). ``replies`` overrides the answer to a step: ``MAIL``,
    ``RCPT``, ``DATA`` (before the body) or ``END`` (after it); ``HANG_UP`` closes instead."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, replies: dict[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.replies = replies or {}
        self.messages: list[bytes] = []
        self.logins: list[str] = []

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _SmtpSession(socketserver.StreamRequestHandler):
    server: SmtpResponder
    defaults = {"MAIL": "250 OK", "RCPT": "250 OK", "DATA": "354 Go ahead", "END": "250 Queued"}

    def handle(self) -> None:
        self._say("220 stand-in ESMTP")
        while line := self.rfile.readline():
            verb, _, arg = line.decode("ascii").strip().partition(" ")
            if not self._answer(verb.upper(), arg):
                return

    def _answer(self, verb: str, arg: str) -> bool:
        if verb == "EHLO":
            return self._say("250-stand-in\r\n250 AUTH PLAIN")
        if verb == "AUTH":
            self.server.logins.append(base64.b64decode(arg.split()[1]).decode())
            return self._say("235 Authenticated")
        if verb in ("MAIL", "RCPT"):
            return self._step(verb)
        if verb == "DATA":
            return self._step("DATA") and self._receive_body()
        if verb == "QUIT":
            self._say("221 Bye")
            return False
        return self._say("250 OK")

    def _receive_body(self) -> bool:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line)
        self.server.messages.append(b"".join(lines))
        return self._step("END")

    def _step(self, step: str) -> bool:
        reply = self.server.replies.get(step, self.defaults[step])
        return reply != HANG_UP and self._say(reply)

    def _say(self, reply: str) -> bool:
        self.wfile.write(reply.encode("ascii") + b"\r\n")
        return True


def running(responder: SmtpResponder) -> Iterator[SmtpResponder]:
    thread = threading.Thread(target=responder.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield responder
    finally:
        responder.shutdown()
        responder.server_close()
        thread.join()


@pytest.fixture()
def relay() -> Iterator[SmtpResponder]:
    yield from running(SmtpResponder())


def _backend(port: int, userinfo: str = "") -> SmtpBackend:
    return SmtpBackend(f"smtp://{userinfo}127.0.0.1:{port}?timeout=2")


def _send_failing(message: EmailMessage, replies: dict[str, str]) -> DeliveryError:
    for responder in running(SmtpResponder(replies)):
        with pytest.raises(DeliveryError) as caught:
            _backend(responder.port).send(message, digest_id=42)
    return caught.value


def test_it_relays_the_message_and_returns_its_message_id(
    relay: SmtpResponder, message: EmailMessage
) -> None:
    result = _backend(relay.port).send(message, digest_id=42)

    assert result.provider_id == message["Message-ID"]
    [raw] = relay.messages
    received = message_from_bytes(raw, policy=default)
    assert isinstance(received, EmailMessage)
    assert received["List-Unsubscribe"] == message["List-Unsubscribe"]
    assert text_part(received).replace("\r\n", "\n") == text_part(message)  # CRLF on the wire


def test_it_logs_in_with_percent_decoded_credentials(
    relay: SmtpResponder, message: EmailMessage
) -> None:
    _backend(relay.port, userinfo="mailer%40paperboy.example:p%40ss@").send(message, digest_id=1)
    assert relay.logins == ["\0mailer@paperboy.example\0p@ss"]


@pytest.mark.parametrize(
    ("replies", "transient"),
    [
        ({"MAIL": "451 Try again later"}, True),
        ({"RCPT": "452 Mailbox full"}, True),
        ({"END": "421 Shutting down"}, True),
        ({"MAIL": "553 Sender not allowed"}, False),
        ({"RCPT": "550 No such user"}, False),
        ({"END": "554 Rejected as spam"}, False),
    ],
)
def test_4xx_replies_are_transient_and_5xx_permanent(
    message: EmailMessage, replies: dict[str, str], transient: bool
) -> None:
    error = _send_failing(message, replies)
    assert (error.transient, error.unknown) == (transient, False)
    assert "digest 42" in str(error)


def test_a_hang_up_before_data_is_transient(message: EmailMessage) -> None:
    error = _send_failing(message, {"RCPT": HANG_UP})
    assert error.transient and not error.unknown


def test_a_hang_up_after_the_body_is_unknown(message: EmailMessage) -> None:
    error = _send_failing(message, {"END": HANG_UP})
    assert error.unknown and not error.transient


def test_a_refused_connection_is_transient(message: EmailMessage) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as caught:
        _backend(port).send(message, digest_id=42)
    assert caught.value.transient


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@host",
        "smtp://user:secret@host?tls=1",
        "smtp://user:secret@host?timeout=0",
        "smtp:///nohost",
    ],
)
def test_a_bad_url_is_refused_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        SmtpBackend(url)
    assert "secret" not in str(caught.value)


def test_list_unsubscribe_goes_out_as_one_plain_line(
    relay: SmtpResponder, long_link_message: EmailMessage
) -> None:
    _backend(relay.port).send(long_link_message, digest_id=42)

    [raw] = relay.messages
    line = unsubscribe_header_line(raw)
    url = str(long_link_message["List-Unsubscribe"])
    assert line == f"List-Unsubscribe: {url}".encode()
    assert url.startswith("<https://paperboy.example.org/unsubscribe/") and url.endswith(">")
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
