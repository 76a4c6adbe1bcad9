"""``/admin``: the operator's page, behind the admin key typed into a login form.

Server-rendered and script-free like every other page. Reading needs the signed session
cookie of :mod:`api.admin_session`; every change is a POST carrying the session's CSRF
token, and goes through the same domain function the rest of the service uses (a deletion
is the subscriber's own deletion, a re-check is the sweep's rules for one digest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api import admin_chart, admin_data
from api.admin_session import (
    COOKIE,
    AdminSession,
    clear_cookie,
    csrf_token,
    csrf_valid,
    key_matches,
    read_session,
    set_cookie,
    start_session,
)
from api.deps import EnqueueDep, NowDep, PathId, SessionDep, SettingsDep, enqueue_quietly
from api.forms import read_form, same_origin
from api.openapi import ADMIN_PAGE_POST, BUSY_PAGE, FORM_PAGES, html_page, redirect
from api.pages import PageError, render
from api.ratelimit import SignUpLimitsDep, refuse_busy_client
from recsys.delivery.backends import outbox_from_settings
from recsys.digests import reconcile
from recsys.settings import Settings
from recsys.subscribers.accounts import SubscriberError, delete_account, pause, resume

router = APIRouter(prefix="/admin", tags=["admin"], default_response_class=HTMLResponse)

DISABLED = "The admin page is off: set PAPERBOY_ADMIN_API_KEY to turn it on."
LOGGED_OUT = "Your admin session has ended or is not valid. Log in again."
BAD_CSRF = "This form is stale or came from another site. Reload the admin page and try again."
WRONG_KEY = "That is not the admin key."
NOTICES = {
    "paused": "Subscriber {id} is paused.",
    "not-paused": "Subscriber {id} was not active, so nothing was paused.",
    "resumed": "Subscriber {id} will get digests again from their next send hour.",
    "not-resumed": "Subscriber {id} was not paused or unsubscribed; nothing changed.",
    "deleted": "Subscriber {id} and everything kept about them is deleted.",
    "not-deleted": "Nothing was deleted: tick the box beside the button to confirm.",
    "gone": "Subscriber {id} does not exist (any more).",
    "recheck-sent": "Digest {id}: a provider event proves it was sent; marked sent.",
    "recheck-requeued": "Digest {id}: provably not sent (or its task was lost); queued again.",
    "recheck-waiting": "Digest {id}: no proof either way yet, so it was left alone.",
    "recheck-not-stuck": "Digest {id} is not stuck; nothing to do.",
}
Form = Annotated[dict[str, Any], Depends(read_form)]


def _enabled(settings: Settings) -> None:
    if not settings.admin_api_key:
        raise PageError(status.HTTP_503_SERVICE_UNAVAILABLE, "Admin disabled", DISABLED)


def _session(request: Request, settings: Settings, now: datetime) -> AdminSession | None:
    _enabled(settings)
    return read_session(settings, request.cookies.get(COOKIE), now)


def checked_post(request: Request, settings: SettingsDep, now: NowDep, form: Form) -> None:
    """A state-changing admin POST: a live session and its CSRF token, from our own page."""
    session = _session(request, settings, now)
    if session is None:
        raise PageError(
            status.HTTP_401_UNAUTHORIZED, "Logged out", LOGGED_OUT, link=("/admin", "Log in")
        )
    if not csrf_valid(settings, session, form.get("csrf")) or not same_origin(request, settings):
        raise PageError(status.HTTP_403_FORBIDDEN, "Refused", BAD_CSRF, link=("/admin", "Back"))


Checked = Depends(checked_post)


@router.get("", responses={503: html_page("The admin page is off.")})
def admin_page(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    now: NowDep,
    q: Annotated[str, Query(max_length=admin_data.MAX_QUERY_CHARS)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=32)] = "",
    subject: Annotated[int, Query(alias="id", ge=0, le=2**63 - 1)] = 0,
) -> HTMLResponse:
    """The operator's page (or its login form)."""
    admin = _session(request, settings, now)
    if admin is None:
        return render("admin_login.html", heading="Paperboy admin")
    days = admin_data.digests_by_day(session, now)
    stale_after = reconcile.sweep_policy(settings).stale_after
    context: dict[str, Any] = {
        "heading": "Paperboy admin",
        "csrf": csrf_token(settings, admin),
        "notice": NOTICES.get(done, "").format(id=subject),
        "today": admin_data.totals(days[-1:]),
        "week": admin_data.totals(days),
        "bars": admin_chart.bars(days),
        "chart": admin_chart,
        "complaints": admin_data.complaints(session, days[0].start),
        "stuck": admin_data.stuck_digests(session, now, stale_after),
        "model": admin_data.model_view(session),
        "experiment": admin_data.experiment(session),
        "search": admin_data.search_subscribers(session, q, page),
        "now": now,
    }
    return render("admin.html", **context)


@router.post(
    "/login",
    response_model=None,
    responses={
        **FORM_PAGES,
        **BUSY_PAGE,
        303: redirect("Logged in: to /admin with the session cookie."),
        401: html_page("Wrong key: the form again."),
        403: html_page("The form came from another site."),
        503: html_page("The admin page is off: PAPERBOY_ADMIN_API_KEY is not set."),
    },
)
def login(
    request: Request,
    settings: SettingsDep,
    now: NowDep,
    form: Form,
    limits: SignUpLimitsDep,
) -> HTMLResponse | RedirectResponse:
    """Log in with the admin key; sets the signed session cookie."""
    _enabled(settings)
    if not same_origin(request, settings):
        raise PageError(status.HTTP_403_FORBIDDEN, "Refused", BAD_CSRF)
    refuse_busy_client(limits, request, form="admin-login", page=True)
    key = form.get("key")
    if not isinstance(key, str) or not key_matches(settings, key):
        return render(
            "admin_login.html",
            status.HTTP_401_UNAUTHORIZED,
            heading="Paperboy admin",
            error=WRONG_KEY,
        )
    admin, cookie = start_session(settings, now)
    response = RedirectResponse("/admin", status.HTTP_303_SEE_OTHER)
    set_cookie(response, request, cookie, admin, settings)
    return response


@router.post(
    "/logout",
    dependencies=[Checked],
    status_code=status.HTTP_303_SEE_OTHER,
    responses=ADMIN_PAGE_POST,
)
def logout(request: Request) -> RedirectResponse:
    """End the session."""
    response = RedirectResponse("/admin", status.HTTP_303_SEE_OTHER)
    clear_cookie(response, request)
    return response


@router.post(
    "/subscribers/{user_id}/pause",
    dependencies=[Checked],
    status_code=status.HTTP_303_SEE_OTHER,
    responses=ADMIN_PAGE_POST,
)
def pause_subscriber(user_id: PathId, session: SessionDep, form: Form) -> RedirectResponse:
    """Pause a subscriber's digests."""
    return _back(form, user_id, _change(pause, session, user_id, "paused"))


@router.post(
    "/subscribers/{user_id}/resume",
    dependencies=[Checked],
    status_code=status.HTTP_303_SEE_OTHER,
    responses=ADMIN_PAGE_POST,
)
def resume_subscriber(
    user_id: PathId, session: SessionDep, form: Form, now: NowDep
) -> RedirectResponse:
    """Send a paused subscriber digests again."""
    return _back(
        form, user_id, _change(lambda s, u: resume(s, u, now), session, user_id, "resumed")
    )


@router.post(
    "/subscribers/{user_id}/delete",
    dependencies=[Checked],
    status_code=status.HTTP_303_SEE_OTHER,
    responses=ADMIN_PAGE_POST,
)
def delete_subscriber(
    user_id: PathId, session: SessionDep, settings: SettingsDep, form: Form
) -> RedirectResponse:
    """Delete a subscriber from every store, as their own deletion does."""
    if form.get("confirm") != "yes":
        return _back(form, user_id, "not-deleted")
    deleted = delete_account(session, user_id, outbox_from_settings(settings))
    return _back(form, user_id, "deleted" if deleted else "gone")


@router.post(
    "/digests/{digest_id}/recheck",
    dependencies=[Checked],
    status_code=status.HTTP_303_SEE_OTHER,
    responses=ADMIN_PAGE_POST,
)
def recheck_digest(
    digest_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    form: Form,
    enqueue: EnqueueDep,
    background: BackgroundTasks,
) -> RedirectResponse:
    """Apply the sweep's rules to one stuck or unknown digest now."""
    result = reconcile.recheck(session, digest_id, now, reconcile.sweep_policy(settings))
    if result.task is not None:  # after the commit: the task must find the row it is sent for
        background.add_task(enqueue_quietly, enqueue, f"paperboy.{result.task}", [[digest_id]])
    return _back(form, digest_id, f"recheck-{result.outcome}")


def _change(
    action: Callable[[Session, int], bool], session: Session, user_id: int, done: str
) -> str:
    """The notice for ``action`` on ``user_id``: ``done``, ``not-<done>`` or ``gone``."""
    try:
        return done if action(session, user_id) else f"not-{done}"
    except SubscriberError:  # no such subscriber
        return "gone"


def _back(form: dict[str, Any], subject: int, done: str) -> RedirectResponse:
    # Back to the same search; only our own path, with the query re-encoded.
    params: dict[str, str | int] = {"done": done, "id": subject}
    if isinstance(form.get("q"), str) and form["q"]:
        params["q"] = form["q"][: admin_data.MAX_QUERY_CHARS]
    return RedirectResponse(f"/admin?{urlencode(params)}", status.HTTP_303_SEE_OTHER)
