"""Self-service sign-up with double opt-in: a form (and its JSON twin), then a confirmation.

Sign-up answers the same whatever the address, so it never tells who is subscribed. The
confirmation e-mail is enqueued after the response, hence after the commit, so the worker
always finds the pending row. The link in it shows a button; only the POST confirms, as mail
scanners follow every link they see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import (
    Enqueue,
    EnqueueDep,
    NowDep,
    SessionDep,
    SettingsDep,
    enqueue_quietly,
    invalid_field,
    page_subscriber,
)
from api.forms import (
    MAX_FORM_BYTES,
    form_of,
    openapi_form,
    preferences_of,
    same_origin,
    seeds_of,
    timezone_names,
)
from api.middleware import JSON_LIBRARY_MAX_BODY
from api.openapi import (
    BUSY_JSON,
    BUSY_PAGE,
    FOREIGN_POST,
    FORM_INVALID,
    FORM_PAGES,
    LINK_PAGES,
    TOO_LARGE,
    json_error,
    redirect,
)
from api.pages import FormInvalid, PageError, message_page, render
from api.ratelimit import SignUpLimits, SignUpLimitsDep, refuse_busy_client
from api.schemas import SignUpAccepted, SignUpCreate, SignUpForm
from recsys.db.models import UserRow
from recsys.settings import Settings
from recsys.subscribers.accounts import (
    FREQUENCIES,
    Additions,
    Interest,
    Preferences,
    SubscriberError,
    confirm,
    read_library,
    sign_up,
)
from recsys.subscribers.library import parse_seed
from recsys.subscribers.links import Keyring, LinkMaker

router = APIRouter(tags=["sign-up"])

CONFIRMATION_TASK = "paperboy.send_confirmation"
PLAN_TASK = "paperboy.plan"  # confirming asks for planning now rather than at beat's next tick
CHECK_INBOX = (
    "If {email} can subscribe, a confirmation link is on its way there. Open it to start "
    "your digests; we send nothing else until you do."
)
FOREIGN_FORM = "This form was sent from another web site. Sign up on this site's own page."
_INVALID = {**FORM_PAGES, **FOREIGN_POST, **FORM_INVALID, **BUSY_PAGE}


def form_context(form: SignUpForm, error: SubscriberError | None = None) -> dict[str, Any]:
    """What the sign-up template needs: the values typed so far and what is wrong."""
    return {
        "heading": "Get research papers picked for you",
        "form": form,
        "error": str(error) if error else None,
        "error_field": error.field.split(".")[0] if error else None,
        "notice": None,
        "frequencies": FREQUENCIES,
        "timezones": timezone_names(),
    }


@router.get("/signup", response_class=HTMLResponse)
def signup_page() -> HTMLResponse:
    """Show the sign-up form."""
    return render("signup.html", **form_context(SignUpForm()))


@router.post(
    "/signup",
    response_class=HTMLResponse,
    openapi_extra=openapi_form(SignUpForm),
    responses=_INVALID,
    max_body_size=MAX_FORM_BYTES,
)
def signup_form(
    form: Annotated[SignUpForm, form_of(SignUpForm)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    enqueue: EnqueueDep,
    background: BackgroundTasks,
    limits: SignUpLimitsDep,
) -> HTMLResponse:
    """Sign up from the web form; only a confirmation e-mail follows until it is confirmed."""
    if not same_origin(request, settings):
        raise PageError(status.HTTP_403_FORBIDDEN, "Wrong site", FOREIGN_FORM)
    refuse_busy_client(limits, request, page=True)
    answer = message_page("Check your inbox", CHECK_INBOX.format(email=form.email.strip()))
    if form.website:  # only a bot fills in the hidden field: told the same, nothing done
        return answer
    try:
        additions = Additions(seeds_of(form), read_library(form.library) if form.library else None)
        user = _sign_up(session, form.email, now, preferences_of(form), additions)
    except SubscriberError as exc:
        raise FormInvalid("signup.html", form_context(form, exc)) from exc
    _confirm_later(limits, background, enqueue, user)
    return answer


@router.post(
    "/subscriptions",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **TOO_LARGE,
        **BUSY_JSON,
        409: json_error("A sign-up for this address is being recorded right now."),
    },
    max_body_size=JSON_LIBRARY_MAX_BODY,
)
def subscribe_self(
    body: SignUpCreate,
    request: Request,
    session: SessionDep,
    now: NowDep,
    enqueue: EnqueueDep,
    background: BackgroundTasks,
    limits: SignUpLimitsDep,
) -> SignUpAccepted:
    """Sign up (JSON); a confirmation e-mail follows, and nothing else until it is confirmed."""
    refuse_busy_client(limits, request, page=False)
    prefs = Preferences(
        name=body.name or "",
        timezone=body.timezone,
        send_hour=body.send_hour,
        frequency=body.frequency,
        digest_size=body.digest_size,
        interests=[Interest(i.kind, i.value) for i in body.interests],
    )
    try:
        library = read_library(body.library) if body.library else None
        additions = Additions([parse_seed(s) for s in body.seeds if s.strip()], library)
        user = _sign_up(session, body.email, now, prefs, additions)
    except SubscriberError as exc:
        raise invalid_field(exc) from exc
    _confirm_later(limits, background, enqueue, user)
    return SignUpAccepted(detail=CHECK_INBOX.format(email=body.email.strip()))


def _confirm_later(
    limits: SignUpLimits, background: BackgroundTasks, enqueue: Enqueue, user: UserRow | None
) -> None:
    # Over the per-address limit the answer stays the same and no e-mail goes out, so
    # nobody can flood an inbox by signing it up again and again.
    if user is not None and limits.confirmation(user.email).allowed:
        background.add_task(enqueue_quietly, enqueue, CONFIRMATION_TASK, [user.id])


def _sign_up(
    session: Session, email: str, now: datetime, prefs: Preferences, additions: Additions
) -> UserRow | None:
    """The pending user to send a confirmation to, or None when none is needed."""
    try:
        signed = sign_up(session, email, now, prefs, additions)
    except IntegrityError as exc:  # the same address signed up in a parallel request
        raise HTTPException(status.HTTP_409_CONFLICT, "sign-up in progress; retry") from exc
    return signed.user if signed.needs_confirmation else None


ConfirmSubscriber = Annotated[UserRow, page_subscriber("confirm")]


@router.get("/confirm/{token}", response_class=HTMLResponse, responses=LINK_PAGES)
def confirm_page(user: ConfirmSubscriber, settings: SettingsDep, now: NowDep) -> HTMLResponse:
    """Ask to confirm the subscription; changes nothing, as mail scanners follow links."""
    if user.status != "pending":  # confirmed already, or unsubscribed since: nothing to do
        link = (preferences_path(settings, user, now), "Your preferences")
        message = f"{user.email} needs no confirmation: its subscription is {user.status}."
        return message_page("Nothing to confirm", message, link=link)
    return render("confirm.html", heading="Confirm your subscription", email=user.email)


@router.post(
    "/confirm/{token}",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={**LINK_PAGES, **TOO_LARGE, 303: redirect("To the preferences page.")},
)
def confirm_now(
    user: ConfirmSubscriber,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    enqueue: EnqueueDep,
    background: BackgroundTasks,
) -> RedirectResponse:
    """Confirm the address, then show the preferences page; idempotent.

    Confirming makes the first digest due at once (a row fact that beat's next planning tick
    honours even if the broker is down now); asking for a planning run after the commit
    means the reader does not wait for that tick.
    """
    confirmed = confirm(session, user.id, now)
    if confirmed:
        background.add_task(enqueue_quietly, enqueue, PLAN_TASK, [])
    target = preferences_path(settings, user, now) + ("?done=confirmed" if confirmed else "")
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def preferences_path(settings: Settings, user: UserRow, now: datetime) -> str:
    """A fresh signed path (no host: it stays on this site) to the user's preferences page."""
    expires = now + timedelta(days=settings.link_ttl_days)
    return LinkMaker(Keyring.from_settings(settings), "", expires).preferences(
        user.id, user.created_at
    )
