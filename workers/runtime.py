"""Per-process state of a worker: one database handle, one loaded model, one backend.

The model is loaded once per process and reloaded only when another version is activated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from recsys.db.session import Database
from recsys.delivery import (
    BatchEmailBackend,
    EmailBackend,
    backend_from_settings,
    single_backend_from_settings,
)
from recsys.settings import get_settings
from recsys.training import artifacts
from recsys.training.model import Model, load_model

_model: Model | None = None


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def database() -> Database:
    return Database(get_settings().sqlalchemy_url)


@lru_cache(maxsize=1)
def backend() -> EmailBackend:
    """One-message backend (confirmation e-mails), built once per process."""
    return single_backend_from_settings(get_settings())


@lru_cache(maxsize=1)
def delivery_backend() -> EmailBackend | BatchEmailBackend:
    """The digest backend, template mode included, built once per process so its HTTP
    connection is reused across send tasks."""
    return backend_from_settings(get_settings())


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
