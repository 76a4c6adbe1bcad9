"""Request dependencies: settings, database session, clock, admin key, pagination."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers import SubscriberError

MAX_PAGE_SIZE = 200


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
NowDep = Annotated[datetime, Depends(get_now)]


def get_session(database: DatabaseDep) -> Iterator[Session]:
    """A session that commits when the route returns and rolls back when it raises."""
    with database.session() as session:
        yield session


# scope="function" commits before the response is sent, so a failed commit is a 500
# instead of a success the client was already told about.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_admin(
    settings: SettingsDep, api_key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """Let the request through only with the operator's ``X-API-Key``."""
    if not settings.admin_api_key:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "admin API disabled: set PAPERBOY_ADMIN_API_KEY"
        )
    # Bytes, because compare_digest refuses non-ASCII str and headers may carry any latin-1.
    if api_key is None or not hmac.compare_digest(
        api_key.encode(), settings.admin_api_key.encode()
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header")


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(get_page)]


def invalid_field(exc: SubscriberError) -> RequestValidationError:
    """A ``SubscriberError`` as FastAPI's own 422 body, naming the field under ``body``."""
    loc = ("body", *exc.field.split("."))
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": exc.reason}])
