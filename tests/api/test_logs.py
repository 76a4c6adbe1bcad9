"""The access log: what uvicorn writes for each request, with link tokens cut out."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator
from datetime import timedelta

import pytest

from api.logs import REDACTED, log_config, redact
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import path_of
from tests.conftest import NOW

LINKS = LinkMaker("k" * 43, "https://paperboy.example.org", NOW + timedelta(days=60))
PREFERENCES = path_of(LINKS.preferences(7, NOW))
TOKEN = PREFERENCES.rpartition("/")[2]


@pytest.fixture()
def access_log() -> Iterator[io.StringIO]:
    """uvicorn's access logger configured as ``paperboy serve`` does, writing to a buffer."""
    logger = logging.getLogger("uvicorn.access")
    saved = (logger.handlers[:], logger.filters[:], logger.propagate, logger.level)
    out = io.StringIO()
    config = log_config()
    config["handlers"]["access"]["stream"] = out
    logging.config.dictConfig(config)
    yield out
    logger.handlers, logger.filters, logger.propagate, logger.level = saved


@pytest.mark.parametrize(
    "path",
    [
        PREFERENCES,
        f"{PREFERENCES}/pause",
        path_of(LINKS.click(7, 3, 9)),
        path_of(LINKS.unsubscribe(7, NOW)),
        f"/mounted/confirm/{TOKEN}?x=1",
        f"/elsewhere?t={TOKEN}",
    ],
)
def test_the_access_log_never_holds_a_token(access_log: io.StringIO, path: str) -> None:
    token = path.split("/")[2] if not path.startswith(("/mounted", "/elsewhere")) else TOKEN
    assert len(token) > 40

    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.9:4711", "GET", path, "1.1", 200
    )

    line = access_log.getvalue()
    assert token not in line
    assert REDACTED in line and "203.0.113.9:4711" in line and " 200" in line


def test_paths_without_tokens_are_logged_as_they_are() -> None:
    for path in ("/health", "/papers?limit=5", "/signup", "/preferences"):
        assert redact(path) == path
