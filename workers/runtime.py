"""Per-process state of a worker: one database handle, one loaded model, one backend.

The model is loaded once per process and reloaded only when another version is activated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from recsys import artifacts
from recsys.db.session import Database
from recsys.delivery import EmailBackend, make_backend
from recsys.model import Model, load_model
from recsys.settings import get_settings

_model: Model | None = None


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def database() -> Database:
    return Database(get_settings().sqlalchemy_url)


@lru_cache(maxsize=1)
def backend() -> EmailBackend:
    s = get_settings()
    return make_backend(
        s.email_backend,
        outbox_dir=s.outbox_dir,
        sendgrid_api_key=s.sendgrid_api_key,
        sendgrid_api_host=s.sendgrid_api_host,
        sendgrid_timeout_s=s.sendgrid_timeout_s,
        smtp_url=s.smtp_url,
    )


def active_model() -> Model | None:
    """The active model, reloaded when the ACTIVE pointer names another version."""
    global _model
    s = get_settings()
    version = artifacts.active_version(s.models_dir)
    if version is None:
        return None
    if _model is None or _model.version != version:
        _model = load_model(s.models_dir, s.data_dir, version)
    return _model
