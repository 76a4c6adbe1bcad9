"""Request dependencies: settings, database session, clock, admin key, pagination, signed
links, the active model and the task queue."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from api import openapi
from api.pages import PageError
from api.schemas import MAX_ID, UserLink
from recsys.db.models import UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.accounts import SubscriberError
from recsys.subscribers.links import Keyring, TokenError, read_token
from recsys.training import store
from recsys.training.model import Model, fetch_model

log = logging.getLogger(__name__)

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


# What every admin route may answer besides its own codes, for the OpenAPI description.
ADMIN_RESPONSES = openapi.ADMIN_KEY


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
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(get_page)]

# A row id in a path: out of range is a 422 naming it, not a database error.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def invalid_field(exc: SubscriberError) -> RequestValidationError:
    """A ``SubscriberError`` as FastAPI's own 422 body, naming the field under ``body``."""
    loc = ("body", *exc.field.split("."))
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": exc.reason}])


# Signed links ------------------------------------------------------------------------------

LinkData = TypeVar("LinkData", bound=BaseModel)


def signed_link(purpose: str, model: type[LinkData], *, page: bool = True) -> Any:
    """A dependency reading the path's ``token`` for ``purpose``.

    A bad token is a 400: an HTML page for links people click (``page``), JSON otherwise.
    It is never a redirect, so no link can send anyone elsewhere.
    """

    def read(token: str, settings: SettingsDep, now: NowDep) -> LinkData:
        try:
            data = read_token(Keyring.from_settings(settings), token, purpose, now)
            return model.model_validate(data)
        except TokenError as exc:
            raise _bad_link(str(exc), page, purpose) from exc
        except ValidationError as exc:
            raise _bad_link("the link carries unexpected data", page, purpose) from exc

    return Depends(read)


# Where a reader whose link failed can get a new one.
FRESH_LINK = ("/preferences-link", "E-mail me a fresh link to my preferences")


def _bad_link(reason: str, page: bool, purpose: str) -> Exception:
    if not page:
        return HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid or expired link: {reason}")
    message = f"This link is invalid or has expired ({reason})."
    link = FRESH_LINK if purpose == "preferences" else None
    return PageError(status.HTTP_400_BAD_REQUEST, "Invalid link", message, link=link)


def subscriber_of(session: Session, link: UserLink) -> UserRow | None:
    """The account a link was made for, or None when it is gone.

    A link signed with a sign-up time only fits the account created then: SQLite may give a
    deleted account's id to a newer one, which must not inherit the old links.
    """
    user = session.get(UserRow, link.u)
    if user is None or (link.c is not None and int(user.created_at.timestamp()) != link.c):
        return None
    return user


def page_subscriber(purpose: str) -> Any:
    """A dependency giving the subscriber of a ``purpose`` link; a 404 page when gone."""

    read_link = signed_link(purpose, UserLink)

    # The link is a default, not Annotated: see ``api.routes.links.followed``.
    def load(session: SessionDep, link: UserLink = read_link) -> UserRow:
        user = subscriber_of(session, link)
        if user is None:
            raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This subscription is gone.")
        return user

    return Depends(load)


_bearer = HTTPBearer(auto_error=False, description="The last part of your preferences link.")


def api_subscriber(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> UserRow:
    """The subscriber whose preferences token is the bearer token; 401 without a valid one."""
    if credentials is None:
        raise _unauthorised("send your preferences token as 'Authorization: Bearer <token>'")
    try:
        data = read_token(
            Keyring.from_settings(settings), credentials.credentials, "preferences", now
        )
        user = subscriber_of(session, UserLink.model_validate(data))
    except TokenError as exc:
        raise _unauthorised(f"invalid or expired token: {exc}") from exc
    except ValidationError as exc:
        raise _unauthorised("invalid token: it carries unexpected data") from exc
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this subscription is gone")
    return user


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


ApiSubscriber = Annotated[UserRow, Depends(api_subscriber)]


# The active model --------------------------------------------------------------------------


class ActiveModel:
    """The active model version (the database says which), loaded once and reloaded when
    another one is activated; fetched into this host's cache if it is not there."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._model: Model | None = None
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def get(self, database: Database) -> Model | None:
        with database.session() as session:
            version = store.active_version(session)
            if version is None:
                return None
            with self._lock:
                if self._model is None or self._model.version != version:
                    s = self._settings
                    self._model = fetch_model(session, s.models_dir, s.data_dir, version)
                return self._model


def get_model(request: Request) -> Model | None:
    active: ActiveModel = request.app.state.model
    return active.get(request.app.state.database)


ModelDep = Annotated[Model | None, Depends(get_model)]


# The task queue ----------------------------------------------------------------------------


class Enqueue(Protocol):
    """Send a task by name to the workers."""

    def __call__(self, task: str, args: list[Any]) -> None: ...


class CeleryEnqueue:
    """Enqueue through the workers' Celery app on the configured broker (built on first use)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._celery: Any = None

    def __call__(self, task: str, args: list[Any]) -> None:
        if self._celery is None:
            from workers.app import make_celery  # the API only needs Celery to send

            self._celery = make_celery(self._settings)
        self._celery.send_task(task, args=args)


def get_enqueue(request: Request) -> Enqueue:
    enqueue: Enqueue = request.app.state.enqueue
    return enqueue


EnqueueDep = Annotated[Enqueue, Depends(get_enqueue)]


def enqueue_quietly(enqueue: Enqueue, task: str, args: list[Any]) -> None:
    """Enqueue from a background task: the response is gone, so a broker outage is logged."""
    try:
        enqueue(task, args)
    except Exception:  # any broker failure: the reader can sign up again for a new e-mail
        log.exception("could not enqueue %s%s; is the broker up?", task, args)
