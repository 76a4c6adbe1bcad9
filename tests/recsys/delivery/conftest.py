"""Fixtures: Ada's digest and the message composed from it at a fixed time."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from recsys.delivery.compose import DigestEmail, compose
from recsys.testing.samples import FROM, SENT_AT, ada_digest


@pytest.fixture()
def digest() -> DigestEmail:
    return ada_digest()


@pytest.fixture()
def message(digest: DigestEmail) -> EmailMessage:
    return compose(digest, FROM, now=SENT_AT)
