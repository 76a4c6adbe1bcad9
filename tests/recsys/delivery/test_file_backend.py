"""The file backend: the outbox a developer reads instead of an inbox."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from recsys.delivery.backends import FileBackend, confirmation_outbox_key, link_outbox_key
from recsys.delivery.compose import html_part, text_part
from tests.recsys.delivery.conftest import unsubscribe_header_line


def test_it_writes_a_parseable_eml_and_the_html_part(tmp_path: Path, message: EmailMessage) -> None:
    outbox = tmp_path / "var" / "outbox"  # does not exist yet
    result = FileBackend(outbox).send(message, digest_id=42)

    eml = outbox / "digest-42.eml"
    assert result.provider_id == str(eml)
    parsed = message_from_bytes(eml.read_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == message["Subject"]
    assert parsed["List-Unsubscribe"] == message["List-Unsubscribe"]
    assert text_part(parsed) == text_part(message)
    assert (outbox / "digest-42.html").read_text(encoding="utf-8") == html_part(message)


def test_sending_the_same_digest_again_overwrites_the_same_files(
    tmp_path: Path, message: EmailMessage
) -> None:
    backend = FileBackend(tmp_path)
    first = backend.send(message, digest_id=42)
    message.replace_header("Subject", "Second attempt")
    second = backend.send(message, digest_id=42)

    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digest-42.eml", "digest-42.html"]
    parsed = message_from_bytes((tmp_path / "digest-42.eml").read_bytes(), policy=default)
    assert parsed["Subject"] == "Second attempt"


def test_different_digests_get_different_files(tmp_path: Path, message: EmailMessage) -> None:
    backend = FileBackend(tmp_path)
    backend.send(message, digest_id=1)
    backend.send(message, digest_id=2)
    assert {p.name for p in tmp_path.iterdir()} == {
        "digest-1.eml",
        "digest-1.html",
        "digest-2.eml",
        "digest-2.html",
    }


def test_the_eml_carries_list_unsubscribe_as_one_plain_line(
    tmp_path: Path, long_link_message: EmailMessage
) -> None:
    FileBackend(tmp_path).send(long_link_message, digest_id=42)

    line = unsubscribe_header_line((tmp_path / "digest-42.eml").read_bytes())
    url = str(long_link_message["List-Unsubscribe"])
    assert line == f"List-Unsubscribe: {url}".encode()
    assert url.startswith("<https://paperboy.example.org/unsubscribe/") and url.endswith(">")
    assert b"=?" not in line


def test_forgetting_a_subscriber_removes_their_digests_confirmation_and_link_mail(
    tmp_path: Path, message: EmailMessage
) -> None:
    backend = FileBackend(tmp_path)
    for key in (7, 12, confirmation_outbox_key(5), link_outbox_key(5)):  # theirs
        backend.send(message, digest_id=key)
    for key in (1, 17, 70, confirmation_outbox_key(6), link_outbox_key(6)):  # someone else's
        backend.send(message, digest_id=key)
    (tmp_path / ".digest-7.eml.x1y2.tmp").write_bytes(b"half a message")  # a crashed write
    (tmp_path / ".digest-70.eml.x1y2.tmp").write_bytes(b"half a message")

    removed = backend.forget(5, [7, 12])

    assert removed == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".digest-70.eml.x1y2.tmp", "digest--1099511627782.eml", "digest--1099511627782.html"]
        + [f"digest-{k}.{ext}" for k in (1, 17, 70, -6) for ext in ("eml", "html")]
    )


def test_forgetting_with_no_outbox_folder_removes_nothing(tmp_path: Path) -> None:
    assert FileBackend(tmp_path / "never-written").forget(5, [7]) == 0
