"""The one logging setup: JSON lines or readable text, context on every line, no tokens.

``paperboy serve``, ``run`` and ``worker`` and the Celery worker and beat they start all call
:func:`configure` (uvicorn's server processes and Celery's pool children configure themselves
from :func:`logging_config`), so an application ``log.info`` reaches the output wherever it
runs. Context (the API's request id, a Celery task's name and id, a digest or user id) is
held in a context variable by :func:`bind` and written on every line logged inside it; a
``digest_id=`` or ``user_id=`` passed as ``extra`` is written the same way.

Every e-mail link carries its signed token in the path (``/preferences/<token>`` opens the
account), so a line holding one would let whoever reads the logs (or their backups, or a log
service) act as every subscriber who clicked: every line is redacted as it is formatted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Fields written when present, from the bound context or a record's ``extra``, in this order.
CONTEXT_FIELDS = ("request_id", "task", "task_id", "digest_id", "user_id")

REDACTED = "[token]"
# The path segment after a route whose links carry a token, wherever the path is mounted...
_AFTER_LINK_ROUTE = re.compile(r"(/(?:c|more|less|unsubscribe|confirm|preferences)/)[^/?#\s\"]+")
# ...and anything shaped like a token (base64url payload "." base64url MAC) elsewhere.
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "paperboy_log_context", default=MappingProxyType({})
)


def redact(text: str) -> str:
    """``text`` with every link token replaced by :data:`REDACTED`."""
    return _TOKEN_SHAPED.sub(REDACTED, _AFTER_LINK_ROUTE.sub(rf"\1{REDACTED}", text))


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Write ``fields`` on every line logged inside the block (in this task or thread)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def set_context(**fields: Any) -> None:
    """Like :func:`bind`, until the current context ends (an asyncio task, a Celery task)."""
    _context.set({**_context.get(), **fields})


def clear_context() -> None:
    _context.set(MappingProxyType({}))


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields of ``record``: the bound ones, overridden by its ``extra``."""
    bound = _context.get()
    found = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, bound.get(name))
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context_of(record),
        }
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value...``, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{k}={v}" for k, v in context_of(record).items())
        return redact(f"{text} [{context}]" if context else text)


def logging_config(level: str = "INFO", fmt: LogFormat = "text") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict: one stderr handler on the root logger.

    uvicorn's and Celery's loggers lose their own handlers and propagate to it, so their lines
    come out in the same format as the application's. A dict, not handlers added in this
    process: uvicorn's worker processes configure their logging from it themselves.
    """
    formatter = "json" if fmt == "json" else "text"
    # Their own level too: uvicorn and Celery set one on their loggers, which would outlive
    # a change of level made here.
    propagate = {"handlers": [], "propagate": True, "level": level.upper()}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "recsys.logs.JsonFormatter"},
            "text": {"()": "recsys.logs.TextFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": formatter,  # which also cuts out tokens
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        "loggers": {
            "uvicorn": propagate,
            "uvicorn.error": propagate,
            "uvicorn.access": propagate,
            "celery": propagate,
        },
    }


def configure(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Configure this process's logging as :func:`logging_config` says."""
    logging.config.dictConfig(logging_config(level, fmt))
