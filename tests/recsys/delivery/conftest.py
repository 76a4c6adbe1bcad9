"""Fixtures: Ada's digest and the message composed from it at a fixed time."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage

import pytest

from recsys.delivery.compose import DigestEmail, compose
from recsys.subscribers.links import LinkMaker
from recsys.testing.samples import FROM, SENT_AT, ada_digest


@pytest.fixture()
def digest() -> DigestEmail:
    return ada_digest()


@pytest.fixture()
def message(digest: DigestEmail) -> EmailMessage:
    return compose(digest, FROM, now=SENT_AT)


@pytest.fixture()
def long_link_message(digest: DigestEmail) -> EmailMessage:
    """Ada's digest with an unsubscribe link as long as a real signed one (over 78 columns)."""
    links = LinkMaker("s" * 43, "https://paperboy.example.org", SENT_AT + timedelta(days=60))
    url = links.unsubscribe(2**40, SENT_AT)
    assert len(url) > 150
    return compose(replace(digest, unsubscribe_url=url), FROM, now=SENT_AT)


def unsubscribe_header_line(raw: bytes) -> bytes:
    """The List-Unsubscribe header of a raw message, as one logical line (any folding kept).

    Asserting on these bytes rather than on the parsed header is the point: a parser
    decodes RFC 2047 encoded-words, which mailbox providers do not do for this header.
    """
    head = raw.split(b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n", 1)[0]
    match = re.search(rb"^List-Unsubscribe: .*?(?=\r?\n(?! ))", head, re.M | re.S)
    assert match is not None, head
    return match[0]
