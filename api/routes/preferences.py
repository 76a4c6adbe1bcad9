"""The subscriber's preferences page: interests, schedule, a preview of the next digest with
the reason for each paper, pause, unsubscribe, a download of their data, account deletion.

Server-rendered, plain forms, no JavaScript. The signed link in every digest (purpose
``preferences``) is the only key: whoever holds the mail holds the subscription, as with the
unsubscribe link beside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.deps import ModelDep, NowDep, SessionDep, SettingsDep, page_subscriber
from api.forms import (
    MAX_FORM_BYTES,
    changed_preferences,
    form_of,
    openapi_form,
    removed_seeds,
    seeds_of,
    timezone_names,
)
from api.openapi import FORM_INVALID, FORM_PAGES, LINK_PAGES, TOO_LARGE, redirect
from api.pages import PAGE_HEADERS, FormInvalid, message_page, render
from api.schemas import DeleteForm, PreferencesForm
from recsys.db.models import UserRow
from recsys.delivery.backends import outbox_from_settings
from recsys.digests.preview import last_sent_digest, preview_digest, skipped_since_last_sent
from recsys.recommender.relevance import STRICTNESS_LABELS
from recsys.settings import Settings
from recsys.subscribers.accounts import (
    FREQUENCIES,
    Additions,
    Interest,
    SeedReport,
    SubscriberError,
    delete_account,
    export_data,
    pause,
    read_library,
    resume,
    seed_papers,
    update_preferences,
)
from recsys.subscribers.links import Keyring, LinkMaker
from recsys.training.model import Model

router = APIRouter(
    prefix="/preferences/{token}",
    tags=["preferences"],
    default_response_class=HTMLResponse,
    responses=LINK_PAGES,
)

Subscriber = Annotated[UserRow, page_subscriber("preferences")]

# Notices are looked up, never echoed from the query string, so a crafted link cannot put
# words on our page.
NOTICES = {
    "confirmed": "Your subscription is confirmed. Your first digest is on its way.",
    "paused": "Digests are paused. Nothing is sent until you resume.",
    "resumed": "Digests are on again from your next send hour.",
}
STATUS_TEXT = {
    "pending": "waiting for you to confirm your address",
    "active": "active",
    "paused": "paused",
    "unsubscribed": "unsubscribed",
}


@router.get("")
def preferences_page(
    token: str,
    user: Subscriber,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelDep,
    now: NowDep,
    done: str | None = None,
) -> HTMLResponse:
    """Show the preferences, the next digest's papers and why each one was picked."""
    page = Page(token, user, session, settings, model, now)
    return render("preferences.html", **page.context(notice=NOTICES.get(done or "")))


@router.post(
    "",
    openapi_extra=openapi_form(PreferencesForm),
    responses={**FORM_PAGES, **FORM_INVALID},
    max_body_size=MAX_FORM_BYTES,
)
def save_preferences(
    token: str,
    user: Subscriber,
    form: Annotated[PreferencesForm, form_of(PreferencesForm)],
    session: SessionDep,
    settings: SettingsDep,
    model: ModelDep,
    now: NowDep,
) -> HTMLResponse:
    """Save interests and schedule, add seed papers and a pasted library; all or nothing."""
    page = Page(token, user, session, settings, model, now)
    try:
        additions = Additions(
            seeds_of(form),
            read_library(form.library) if form.library.strip() else None,
            removed_seeds(form),
        )
        stored = [Interest(i.kind, i.value) for i in user.interests]
        prefs = changed_preferences(form, stored)
        report = update_preferences(session, user.id, prefs, now, additions)
    except SubscriberError as exc:
        raise FormInvalid("preferences.html", page.context(form=form, error=exc)) from exc
    return render("preferences.html", **page.context(notice=saved_notice(report)))


@router.post(
    "/pause",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={**TOO_LARGE, 303: redirect("Back to the preferences page.")},
)
def pause_digests(token: str, user: Subscriber, session: SessionDep) -> RedirectResponse:
    """Pause digests; interests and history are kept."""
    pause(session, user.id)
    return _back(token, "paused")


@router.post(
    "/resume",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={**TOO_LARGE, 303: redirect("Back to the preferences page.")},
)
def resume_digests(
    token: str, user: Subscriber, session: SessionDep, now: NowDep
) -> RedirectResponse:
    """Send digests again (after a pause or an unsubscribe) from the next send hour."""
    resume(session, user.id, now)
    return _back(token, "resumed")


@router.get("/data", response_class=JSONResponse)
def download_data(user: Subscriber, session: SessionDep) -> JSONResponse:
    """Download everything stored about this subscriber, as JSON."""
    headers = {**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="paperboy-data.json"'}
    return JSONResponse(export_data(session, user.id), headers=headers)


@router.post(
    "/delete",
    openapi_extra=openapi_form(DeleteForm),
    responses={**FORM_PAGES, **FORM_INVALID},
)
def delete_my_account(
    user: Subscriber,
    form: Annotated[DeleteForm, form_of(DeleteForm)],
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Delete the account and all its data, once the box saying so is ticked."""
    if form.confirm != "yes":
        message = "Nothing was deleted: tick the box to confirm, then press the button again."
        return message_page("Not deleted", message, status.HTTP_422_UNPROCESSABLE_CONTENT)
    email = user.email
    delete_account(session, user.id, outbox_from_settings(settings))
    return message_page("Account deleted", f"{email} and everything we kept about it is gone.")


def _back(token: str, done: str) -> RedirectResponse:
    # Only ever our own page, built from the validated token: never a URL from the request.
    return RedirectResponse(f"/preferences/{token}?done={done}", status.HTTP_303_SEE_OTHER)


def saved_notice(report: SeedReport) -> str:
    """Say what was saved, and which seed papers could not be used."""
    parts = ["Saved."]
    if report.found:
        parts.append(f"{len(report.found)} seed paper(s) found in the catalogue.")
    if report.as_text:
        parts.append(f"Not in the catalogue, kept as topics: {'; '.join(report.as_text)}.")
    if report.missing:
        parts.append(f"Not in the catalogue yet, ignored: {', '.join(report.missing)}.")
    if report.skipped:
        parts.append(f"Library entries that could not be read: {'; '.join(report.skipped)}.")
    return " ".join(parts)


class Page:
    """Builds the preferences template's context for one subscriber."""

    def __init__(
        self,
        token: str,
        user: UserRow,
        session: Session,
        settings: Settings,
        model: Model | None,
        now: datetime,
    ) -> None:
        self.token, self.user, self.session = token, user, session
        self.settings, self.model, self.now = settings, model, now

    def context(
        self,
        *,
        form: PreferencesForm | None = None,
        error: SubscriberError | None = None,
        notice: str | None = None,
    ) -> dict[str, Any]:
        user = self.user
        last = last_sent_digest(self.session, user.id)
        return {
            "heading": "Your Paperboy preferences",
            "user": user,
            "status_text": STATUS_TEXT.get(user.status, user.status),
            "form": form or form_from(user),
            "seeds": seed_papers(self.session, user.id),
            "preview": preview_digest(
                self.session, self.model, user.id, self.now, lookback=self._lookback()
            ),
            "last_digest": last.items if last else (),
            "last_period": last.period if last else "",
            "urls": self._urls(),
            "error": str(error) if error else None,
            "error_field": error.field.split(".")[0] if error else None,
            "notice": notice,
            "frequencies": FREQUENCIES,
            "strictness_levels": STRICTNESS_LABELS,
            "skipped_note": self._skipped_note(),
            "timezones": timezone_names(),
        }

    def _skipped_note(self) -> str | None:
        period = skipped_since_last_sent(self.session, self.user.id)
        return None if period is None else f"Nothing new cleared your bar on {period}."

    def _lookback(self) -> timedelta:
        return timedelta(days=self.settings.candidate_lookback_days)

    def _urls(self) -> dict[str, str]:
        expires = self.now + timedelta(days=self.settings.link_ttl_days)
        links = LinkMaker(Keyring.from_settings(self.settings), "", expires)
        here = f"/preferences/{self.token}"
        return {
            "save": here,
            "pause": f"{here}/pause",
            "resume": f"{here}/resume",
            "data": f"{here}/data",
            "delete": f"{here}/delete",
            "unsubscribe": links.unsubscribe(self.user.id, self.user.created_at),
        }


def form_from(user: UserRow) -> PreferencesForm:
    """The form as the stored preferences fill it."""
    by_kind: dict[str, list[str]] = {}
    for interest in user.interests:
        by_kind.setdefault(interest.kind, []).append(interest.value)
    return PreferencesForm(
        email=user.email,
        name=user.name or "",
        keywords="\n".join(by_kind.get("keyword", [])),
        authors="\n".join(by_kind.get("author", [])),
        categories=" ".join(by_kind.get("category", [])),
        description="\n".join(by_kind.get("text", [])),
        timezone=user.timezone,
        send_hour=str(user.send_hour),
        frequency=user.frequency,
        digest_size=str(user.digest_size),
        strictness=user.strictness,
    )
