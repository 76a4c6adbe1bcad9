"""Subscribers, for the operator (admin API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import (
    ADMIN_RESPONSES,
    NowDep,
    PageDep,
    PathId,
    SessionDep,
    invalid_field,
    require_admin,
)
from api.openapi import json_error
from api.schemas import UserCreate, UserPublic, UsersPublic
from recsys.db.models import UserRow
from recsys.subscribers.accounts import Interest, SubscriberError, create_user, normalise_email

router = APIRouter(
    prefix="/users",
    tags=["users"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_RESPONSES,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: json_error("The e-mail address is already subscribed.")},
)
def subscribe(body: UserCreate, session: SessionDep, now: NowDep) -> UserPublic:
    """Subscribe a new user with their interests; their first digest is due at once."""
    try:
        _refuse_taken_email(session, body.email)
        user = create_user(
            session,
            body.email,
            now,
            name=body.name,
            interests=[Interest(i.kind, i.value) for i in body.interests],
            timezone=body.timezone,
            digest_size=body.digest_size,
        )
    except SubscriberError as exc:
        raise invalid_field(exc) from exc
    except IntegrityError as exc:  # a concurrent sign-up with the same address got there first
        raise HTTPException(status.HTTP_409_CONFLICT, "this e-mail is already subscribed") from exc
    return UserPublic.model_validate(user)


def _refuse_taken_email(session: Session, email: str) -> None:
    # create_user also refuses a taken address, but as a SubscriberError on "email" that
    # reads like bad input; a conflict is a 409, so it is looked for first.
    address = normalise_email(email)
    if session.scalar(select(UserRow.id).where(UserRow.email == address)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{address} is already subscribed")


@router.get("")
def list_users(session: SessionDep, page: PageDep) -> UsersPublic:
    """List subscribers in sign-up order."""
    query = select(UserRow).order_by(UserRow.id).limit(page.limit).offset(page.offset)
    rows = session.scalars(query)
    count = session.scalar(select(func.count()).select_from(UserRow)) or 0
    return UsersPublic(items=[UserPublic.model_validate(row) for row in rows], count=count)


@router.get("/{user_id}", responses={404: json_error("No such user.")})
def get_user(user_id: PathId, session: SessionDep) -> UserPublic:
    """Get one subscriber by id."""
    user = session.get(UserRow, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    return UserPublic.model_validate(user)
