"""Interaction events recorded by the operator (admin API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from api.deps import ADMIN_RESPONSES, NowDep, SessionDep, invalid_field, require_admin
from api.openapi import json_error
from api.schemas import EventCreate, EventPublic
from recsys.subscribers.accounts import SubscriberError
from recsys.subscribers.events import record_event

router = APIRouter(
    prefix="/events",
    tags=["events"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_RESPONSES,
)

_MISSING_IDS = frozenset({"user_id", "paper_id"})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={404: json_error("No such user or paper.")},
)
def create_event(body: EventCreate, session: SessionDep, now: NowDep) -> EventPublic:
    """Record a subscriber's interaction with a paper."""
    try:
        event = record_event(session, body.user_id, body.paper_id, body.kind, now)
    except SubscriberError as exc:
        if exc.field in _MISSING_IDS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        raise invalid_field(exc) from exc
    return EventPublic.model_validate(event)
