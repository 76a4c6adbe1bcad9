"""Provider webhooks: SendGrid's Event Webhook (deliveries, bounces, spam reports, ...)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status

from api.deps import NowDep, SessionDep, SettingsDep
from api.openapi import json_error
from recsys.digests.reconcile import SignatureError, ingest_events, verify_signature

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 16 * 1024 * 1024  # SendGrid posts batches of events, far below this


async def _raw_body(request: Request) -> bytes:
    # The signature covers the bytes as sent, so the body is read raw, never re-parsed first.
    # The route's max_body_size has capped it (413) while it streamed in.
    return await request.body()


@router.post(
    "/sendgrid",
    responses={
        400: json_error("The body is not a JSON array of events."),
        403: json_error("Missing, wrong or stale signature."),
        413: json_error("The body is over 16 MiB."),
        503: json_error("No verification key configured; SendGrid will retry."),
    },
    max_body_size=MAX_BODY_BYTES,
)
def sendgrid_events(
    body: Annotated[bytes, Depends(_raw_body)],
    settings: SettingsDep,
    session: SessionDep,
    now: NowDep,
    signature: Annotated[str | None, Header(alias="X-Twilio-Email-Event-Webhook-Signature")] = None,
    timestamp: Annotated[str | None, Header(alias="X-Twilio-Email-Event-Webhook-Timestamp")] = None,
) -> dict[str, Any]:
    """Record SendGrid events once each (signed, de-duplicated by ``sg_event_id``)."""
    key = settings.sendgrid_webhook_public_key
    if not key:
        # Not 2xx: SendGrid keeps the events and retries, so none are lost while unset.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "webhook disabled: set PAPERBOY_SENDGRID_WEBHOOK_PUBLIC_KEY",
        )
    try:
        verify_signature(
            key, signature, timestamp, body, now, settings.sendgrid_webhook_tolerance_s
        )
    except SignatureError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"rejected: {exc}") from exc
    events = _json_array(body)
    return ingest_events(session, events, now).as_dict()


def _json_array(body: bytes) -> list[Any]:
    try:
        # NaN and Infinity are not JSON (PostgreSQL refuses them in the stored payload):
        # read as null, so only the element holding one is found invalid.
        events = json.loads(body, parse_constant=lambda _name: None)
    except RecursionError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body nests too deeply") from exc
    except ValueError as exc:  # not JSON, or a number of over 4,300 digits
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be a JSON array of events")
    return events
