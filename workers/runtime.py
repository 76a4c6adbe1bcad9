"""Per-process state of a worker: one database handle, one loaded model, one backend.

The model is loaded once per process and reloaded only when another version is activated
(one small query per task asks the database which version that is).
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
from recsys.training import store
from recsys.training.model import Model, fetch_model

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
    """The active model, reloaded when the database names another version (fetched into
    this host's cache first if this host has not seen it)."""
    global _model
    s = get_settings()
    with database().session() as session:
        version = store.active_version(session)
        if version is None:
            return None
        if _model is None or _model.version != version:
            _model = fetch_model(session, s.models_dir, s.data_dir, version)
    return _model
