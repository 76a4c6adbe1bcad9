"""The subscriber's own JSON API: their settings, next-digest preview, data and deletion.

Authenticated by the signed preferences token from their e-mail, sent as
``Authorization: Bearer <token>`` (the last part of the preferences link), never the
operator's API key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from api.deps import ApiSubscriber, ModelDep, NowDep, SessionDep, SettingsDep, invalid_field
from api.middleware import JSON_LIBRARY_MAX_BODY
from api.openapi import BEARER, TOO_LARGE, invalid_json
from api.schemas import (
    PreviewPublic,
    SeedPublic,
    SeedReportPublic,
    SubscriberPublic,
    SubscriberUpdate,
    SubscriberUpdated,
)
from recsys.db.models import UserRow
from recsys.delivery.backends import outbox_from_settings
from recsys.digests.preview import preview_digest
from recsys.subscribers.accounts import (
    Additions,
    Interest,
    Preferences,
    SubscriberError,
    delete_account,
    export_data,
    pause,
    read_library,
    resume,
    seed_papers,
    update_preferences,
)
from recsys.subscribers.library import parse_seed

router = APIRouter(
    prefix="/me",
    tags=["subscriber"],
    responses=BEARER,
)


@router.get("")
def get_me(user: ApiSubscriber, session: SessionDep) -> SubscriberPublic:
    """Get your subscription: settings, interests and seed papers."""
    return _public(session, user)


@router.patch(
    "",
    responses={**TOO_LARGE, 422: invalid_json("A field is invalid; it is named.")},
    max_body_size=JSON_LIBRARY_MAX_BODY,
)
def update_me(
    body: SubscriberUpdate, user: ApiSubscriber, session: SessionDep, now: NowDep
) -> SubscriberUpdated:
    """Change settings, replace interests, add or drop seed papers, import a library, pause."""
    interests = None
    if body.interests is not None:
        interests = [Interest(i.kind, i.value) for i in body.interests]
    prefs = Preferences(
        name=body.name,
        timezone=body.timezone,
        send_hour=body.send_hour,
        frequency=body.frequency,
        digest_size=body.digest_size,
        interests=interests,
    )
    try:
        library = read_library(body.library) if body.library else None
        additions = Additions(
            [parse_seed(s) for s in body.add_seeds if s.strip()], library, body.remove_seeds
        )
        report = update_preferences(session, user.id, prefs, now, additions)
    except SubscriberError as exc:
        raise invalid_field(exc) from exc
    if body.paused is True:
        pause(session, user.id)
    elif body.paused is False:
        resume(session, user.id, now)
    seeds = SeedReportPublic(
        found=report.found, as_text=report.as_text, missing=report.missing, skipped=report.skipped
    )
    return SubscriberUpdated(subscriber=_public(session, user), seeds=seeds)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def delete_me(user: ApiSubscriber, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete your account and all its data, the copies of mail sent to you included."""
    delete_account(session, user.id, outbox_from_settings(settings))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/export")
def export_me(user: ApiSubscriber, session: SessionDep) -> dict[str, Any]:
    """Everything stored about you: profile, interests, events and digests."""
    return export_data(session, user.id)


@router.get("/preview")
def preview_me(
    user: ApiSubscriber, session: SessionDep, settings: SettingsDep, model: ModelDep, now: NowDep
) -> PreviewPublic:
    """Your next digest as it would be ranked now, with the reason for each paper."""
    lookback = timedelta(days=settings.candidate_lookback_days)
    preview = preview_digest(session, model, user.id, now, lookback=lookback)
    return PreviewPublic.model_validate(preview)


def _public(session: Session, user: UserRow) -> SubscriberPublic:
    seeds = [SeedPublic.model_validate(p) for p in seed_papers(session, user.id)]
    return SubscriberPublic.model_validate({**_fields(user), "seeds": seeds})


def _fields(user: UserRow) -> dict[str, Any]:
    names = SubscriberPublic.model_fields.keys() - {"seeds"}
    return {name: getattr(user, name) for name in names}
