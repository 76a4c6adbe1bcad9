"""The one logging setup: JSON or text lines, context on each line, never a link token."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from datetime import timedelta

import pytest

from recsys import logs
from recsys.logs import REDACTED, LogFormat, logging_config, redact
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import path_of
from tests.conftest import NOW

LINKS = LinkMaker("k" * 43, "https://paperboy.example.org", NOW + timedelta(days=60))
PREFERENCES = path_of(LINKS.preferences(7, NOW))
TOKEN = PREFERENCES.rpartition("/")[2]


def configured(fmt: LogFormat) -> io.StringIO:
    """Configure logging as every command does, writing to a buffer instead of stderr."""
    out = io.StringIO()
    config = logging_config("INFO", fmt)
    config["handlers"]["default"]["stream"] = out
    logging.config.dictConfig(config)
    return out


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "celery"]
    saved = {
        n: (lg.handlers[:], lg.propagate, lg.level) for n in names for lg in [logging.getLogger(n)]
    }
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate, logger.level = handlers, propagate, level
    logs.clear_context()


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
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_access_log_never_holds_a_token(path: str, fmt: LogFormat) -> None:
    token = path.split("/")[2] if not path.startswith(("/mounted", "/elsewhere")) else TOKEN
    assert len(token) > 40
    out = configured(fmt)

    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.9:4711", "GET", path, "1.1", 200
    )

    line = out.getvalue()
    assert token not in line
    assert REDACTED in line and "203.0.113.9:4711" in line and " 200" in line


def test_a_token_in_a_traceback_is_cut_out_too() -> None:
    out = configured("json")
    try:
        raise ValueError(f"bad link {PREFERENCES}")
    except ValueError:
        logging.getLogger("api.deps").exception("could not open")

    record = json.loads(out.getvalue())
    assert TOKEN not in out.getvalue()
    assert "ValueError: bad link /preferences/[token]" in record["exc"]


def test_paths_without_tokens_are_logged_as_they_are() -> None:
    for path in ("/health", "/papers?limit=5", "/signup", "/preferences"):
        assert redact(path) == path


def test_a_json_line_carries_the_bound_context_and_the_digest_id_given_as_extra() -> None:
    out = configured("json")

    with logs.bind(task="paperboy.send", task_id="abc"):
        logging.getLogger("recsys.digests.sending").warning(
            "digest %s failed", 42, extra={"digest_id": 42}
        )
    logging.getLogger("workers.tasks").info("outside the task")

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "recsys.digests.sending"
    assert first["message"] == "digest 42 failed"
    assert (first["task"], first["task_id"], first["digest_id"]) == ("paperboy.send", "abc", 42)
    assert second["message"] == "outside the task" and "task" not in second  # unbound again


def test_a_text_line_is_readable_and_ends_with_its_context() -> None:
    out = configured("text")

    with logs.bind(request_id="r-1"):
        logging.getLogger("api.deps").info("enqueued %s", "paperboy.send")

    line = out.getvalue().strip()
    assert line.endswith("INFO api.deps: enqueued paperboy.send [request_id=r-1]")


def test_application_info_lines_reach_the_output_and_debug_lines_do_not() -> None:
    out = configured("text")

    logging.getLogger("workers.tasks").info("trained and activated model v1")
    logging.getLogger("workers.tasks").debug("noise")

    assert "trained and activated model v1" in out.getvalue() and "noise" not in out.getvalue()
