"""The SMTP sink the compose stack's ``mailsink`` profile runs, fed by the real SMTP backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from recsys.delivery.backends import SmtpBackend
from recsys.testing.smtp_sink import SmtpSink


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink("127.0.0.1", 0, tmp_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_it_stores_each_message_whole_as_one_file(sink: SmtpSink, tmp_path: Path) -> None:
    port = sink.server_address[1]
    backend = SmtpBackend(f"smtp://127.0.0.1:{port}")
    for n, to in enumerate(["ada@example.org", "bob@example.org"]):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "pb@example.org", to, f"d{n}"
        message.set_content(".a line that starts with a dot\nend\n")
        backend.send(message, digest_id=n)

    stored = sorted(tmp_path.glob("*.eml"))
    received = [message_from_bytes(p.read_bytes(), policy=default) for p in stored]
    assert [m["To"] for m in received] == ["ada@example.org", "bob@example.org"]
    body = received[0].get_content().replace("\r\n", "\n")
    assert body == ".a line that starts with a dot\nend\n"
    assert not list(tmp_path.glob("*.tmp"))
