"""The server's log configuration: uvicorn's, with account tokens cut out of the access log.

Every e-mail link carries its signed token in the path (``/preferences/<token>`` opens the
account), so an access log as uvicorn writes it would let whoever reads the logs (or their
backups, or a log service) act as every subscriber who clicked.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[token]"
# The path segment after a route whose links carry a token, wherever the path is mounted...
_AFTER_LINK_ROUTE = re.compile(r"(/(?:c|more|less|unsubscribe|confirm|preferences)/)[^/?#\s\"]+")
# ...and anything shaped like a token (base64url payload "." base64url MAC) elsewhere.
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """``text`` with every link token replaced by :data:`REDACTED`."""
    return _TOKEN_SHAPED.sub(REDACTED, _AFTER_LINK_ROUTE.sub(rf"\1{REDACTED}", text))


class RedactTokens(logging.Filter):
    """Rewrites the arguments of uvicorn's access-log records before they are formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactTokens` on access lines.

    A dict, not a filter added in this process: uvicorn's worker processes configure their
    logging from it themselves.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": "api.logs.RedactTokens"}
    config["handlers"]["access"].setdefault("filters", []).append("redact_tokens")
    return config
