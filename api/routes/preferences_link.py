"""Send me my preferences link: the way back to an account whose links have expired.

The answer is the same whatever the address, so the form never tells who is subscribed.
Each client address and each e-mail address is limited like sign-up (``api.ratelimit``),
and the e-mail holds nothing the requester typed, so the form cannot be used to mail
strangers at will.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import EnqueueDep, SessionDep, SettingsDep, enqueue_quietly
from api.forms import form_of, openapi_form, same_origin
from api.openapi import BUSY_PAGE, FOREIGN_POST, FORM_PAGES
from api.pages import PageError, message_page, render
from api.ratelimit import SignUpLimitsDep, refuse_busy_client
from api.schemas import PreferencesLinkForm
from recsys.db.models import UserRow
from recsys.subscribers.accounts import SubscriberError, normalise_email

router = APIRouter(tags=["sign-up"], default_response_class=HTMLResponse)

LINK_TASK = "paperboy.send_preferences_link"
ON_ITS_WAY = (
    "If {email} has a Paperboy subscription, a fresh link to its preferences is on its way there."
)
FOREIGN_FORM = "This form was sent from another web site. Use this site's own page."


@router.get("/preferences-link")
def preferences_link_page() -> HTMLResponse:
    """Show the form asking for a fresh preferences link."""
    return render("preferences_link.html", heading="Get your preferences link")


@router.post(
    "/preferences-link",
    openapi_extra=openapi_form(PreferencesLinkForm),
    responses={**FORM_PAGES, **FOREIGN_POST, **BUSY_PAGE},
)
def send_preferences_link(
    form: Annotated[PreferencesLinkForm, form_of(PreferencesLinkForm)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    enqueue: EnqueueDep,
    background: BackgroundTasks,
    limits: SignUpLimitsDep,
) -> HTMLResponse:
    """E-mail a fresh preferences link to a subscribed address; the same answer for any."""
    if not same_origin(request, settings):
        raise PageError(status.HTTP_403_FORBIDDEN, "Wrong site", FOREIGN_FORM)
    refuse_busy_client(limits, request, form="preferences-link", page=True)
    answer = message_page("Check your inbox", ON_ITS_WAY.format(email=form.email.strip()))
    user = None if form.website else _subscriber(session, form.email)
    if user is not None and limits.preferences_link(user.email).allowed:
        background.add_task(enqueue_quietly, enqueue, LINK_TASK, [user.id])
    return answer


def _subscriber(session: Session, email: str) -> UserRow | None:
    """The account of ``email`` if a link may be sent to it (the worker checks again)."""
    try:
        address = normalise_email(email)
    except SubscriberError:
        return None  # answered alike: a typo is not told apart from an unknown address
    user = session.scalar(select(UserRow).where(UserRow.email == address))
    return user if user is not None and user.status != "pending" else None
