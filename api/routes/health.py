"""Liveness and database reachability, for load balancers and ``docker compose``."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import DatabaseDep
from api.schemas import HealthPublic
from recsys.db.session import Database

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"model": HealthPublic, "description": "The database does not answer."}},
)
def health(database: DatabaseDep, response: Response) -> HealthPublic:
    """Report whether the API and its database answer."""
    problem = database_problem(database)
    if problem is not None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthPublic(status="error", database=problem)
    return HealthPublic(status="ok", database="ok")


def database_problem(database: Database) -> str | None:
    """Why ``SELECT 1`` fails on ``database``, or None when it answers."""
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(exc).splitlines()[0]
    return None
