"""Error reports to Sentry, when ``PAPERBOY_SENTRY_DSN`` is set (the ``paperboy[sentry]`` extra).

Unset, nothing is imported and nothing leaves the process. Set, the API and every worker
process report unhandled errors with their FastAPI or Celery context, never a person: no
cookies, headers or client addresses (``send_default_pii=False``), and every URL, message
and breadcrumb goes through :func:`recsys.logs.redact`, because the e-mail links carry
signed tokens in their paths and a token is a key to someone's account.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, cast

from recsys.logs import redact
from recsys.settings import Settings

log = logging.getLogger(__name__)

Process = Literal["api", "worker"]


def init_sentry(settings: Settings, process: Process) -> bool:
    """Start reporting to Sentry if a DSN is configured; True when it did.

    A DSN set without the extra installed is a configuration error, and is raised rather
    than ignored: the operator asked for error reports and would silently get none.
    """
    if not settings.sentry_dsn:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration
    except ImportError as exc:
        raise RuntimeError(
            "PAPERBOY_SENTRY_DSN is set but sentry-sdk is not installed: "
            "pip install 'paperboy[sentry]', or unset PAPERBOY_SENTRY_DSN"
        ) from exc
    integrations: list[Any] = (
        [StarletteIntegration(), FastApiIntegration()]
        if process == "api"
        else [CeleryIntegration()]
    )
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        send_default_pii=False,
        # The SDK types events as TypedDicts; these hooks take and return any mapping.
        before_send=cast(Any, strip_tokens),
        before_breadcrumb=cast(Any, _strip_breadcrumb),
        integrations=integrations,
        traces_sample_rate=0.0,  # errors only: no request is traced
    )
    log.info("reporting errors to Sentry (%s)", process)
    return True


def strip_tokens(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """``event`` with every link token cut out of its text, wherever the SDK put it."""
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def _strip_breadcrumb(crumb: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    scrubbed: dict[str, Any] = _scrub(crumb)
    return scrubbed


def _scrub(value: Any) -> Any:
    # Every string, not a list of known fields: the request URL, the transaction name, an
    # exception message or a local variable may each hold a path with a token in it.
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value
