"""Health for load balancers, ``docker compose`` and operators.

``/health/live`` answers without any I/O (is the process serving?). ``/health`` checks the
database (503 when it does not answer) and reports the broker, the active model and its age,
and each paper source's last harvest.
"""

from __future__ import annotations

from datetime import datetime

import redis
from fastapi import APIRouter, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import DatabaseDep, NowDep, SettingsDep
from api.metrics import redis_py_url
from api.schemas import HealthPublic, LivePublic, ModelHealth, SourceHealth
from recsys.catalog.harvest.state import states
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training import store

router = APIRouter(tags=["health"])
BROKER_TIMEOUT_S = 0.5


@router.get("/health/live")
def live() -> LivePublic:
    """Answer at once, touching nothing: the process is up and serving."""
    return LivePublic(status="ok")


@router.get(
    "/health",
    responses={503: {"model": HealthPublic, "description": "The database does not answer."}},
)
def health(
    database: DatabaseDep, settings: SettingsDep, now: NowDep, response: Response
) -> HealthPublic:
    """Report the database, the broker, the active model and the last harvest per source."""
    problem = database_problem(database)
    if problem is not None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthPublic(status="error", database=problem, broker=broker_problem(settings))
    return HealthPublic(
        status="ok",
        database="ok",
        broker=broker_problem(settings) or "ok",
        model=model_health(database, now),
        sources=source_health(database),
    )


def database_problem(database: Database) -> str | None:
    """Why ``SELECT 1`` fails on ``database``, or None when it answers."""
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(exc).splitlines()[0]
    return None


def broker_problem(settings: Settings) -> str | None:
    """Why the broker does not answer a PING, or None when it does."""
    try:
        client = redis.Redis.from_url(
            redis_py_url(settings.broker_url),
            socket_timeout=BROKER_TIMEOUT_S,
            socket_connect_timeout=BROKER_TIMEOUT_S,
        )
        with client:
            client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
    return None


def model_health(database: Database, now: datetime) -> ModelHealth | None:
    """The active model and how old it is; None before the first training."""
    try:
        with database.session() as session:
            version = store.active_version(session)
            if version is None:
                return None
            trained = store.read_manifest(session, version).get("created_at")
    except (SQLAlchemyError, OSError, ValueError):
        return None
    age = (now - datetime.fromisoformat(trained)).total_seconds() / 3600 if trained else None
    return ModelHealth(version=version, trained_at=trained, age_hours=age and round(age, 2))


def source_health(database: Database) -> list[SourceHealth]:
    """Each harvested source's last run, as stored by the harvest."""
    try:
        with database.session() as session:
            found = states(session)
    except SQLAlchemyError:
        return []
    return [
        SourceHealth(
            name=name,
            last_status=state.last_status,
            last_finished_at=state.as_dict()["last_finished_at"],
            last_error=state.last_error,
        )
        for name, state in sorted(found.items())
    ]
