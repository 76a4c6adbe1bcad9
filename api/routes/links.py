"""The links in a digest e-mail: tracked clicks, more / less like this, unsubscribe.

Each link carries a signed token (``recsys.subscribers.links``); a bad, expired or misused one gets
a 400 page, never a redirect. A click redirects only to the paper's stored URL, never to one
taken from the request or the token, so these links cannot be used as an open redirect.

Mail scanners follow links too. Every follow is recorded, and one that looks automated
(``recsys.subscribers.scanners``: HEAD, a scanner's User-Agent, seconds after delivery) is flagged
``suspect`` so it never counts as the reader's interest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import (
    NowDep,
    SessionDep,
    SettingsDep,
    get_app_settings,
    get_database,
    get_now,
    signed_link,
    subscriber_of,
)
from api.openapi import LINK_PAGES, TOO_LARGE, redirect
from api.pages import PAGE_HEADERS, PageError, message_page, unsubscribe_page
from api.schemas import PaperLink, UserLink
from recsys.db.models import DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.accounts import SubscriberError, unsubscribe
from recsys.subscribers.events import WEB_SCHEMES, record_click, record_event, store_reader_click
from recsys.subscribers.events import Click as RecordedClick
from recsys.subscribers.links import Keyring, TokenError, read_token
from recsys.subscribers.scanners import suspect_reason

router = APIRouter(
    tags=["links"],
    default_response_class=HTMLResponse,
    responses=LINK_PAGES,
)

UnsubscribeLink = Annotated[UserLink, signed_link("unsubscribe", UserLink)]


@dataclass(frozen=True)
class Follow:
    """One following of a paper link: the link, its digest, and whether it looks automated."""

    link: PaperLink
    paper: PaperRow
    digest: DigestRow | None
    user_agent: str | None
    suspect: bool
    # Several of the digest's links followed this close together are all discarded.
    burst_s: float

    @property
    def digest_id(self) -> int | None:
        return self.digest.id if self.digest is not None else None


def followed(purpose: str) -> Any:
    """A dependency reading a ``purpose`` paper link and classifying who followed it."""

    # A default rather than an Annotated type: annotations are strings here (PEP 563) and
    # FastAPI resolves them in the module, where ``purpose`` does not exist.
    read_link = signed_link(purpose, PaperLink)

    def follow(
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        now: NowDep,
        link: PaperLink = read_link,
    ) -> Follow:
        paper = _paper(session, link.p)
        digest = _digest(session, link)
        agent = request.headers.get("user-agent")
        sent_at = digest.sent_at if digest is not None else None
        reason = suspect_reason(request.method, agent, now, sent_at, settings.scanner_window_s)
        suspect = reason is not None
        return Follow(link, paper, digest, agent, suspect, settings.scanner_burst_s)

    return Depends(follow)


Click = Annotated[Follow, followed("click")]
More = Annotated[Follow, followed("more")]
Less = Annotated[Follow, followed("less")]


# The HEAD routes are declared before the GET ones: Starlette lets a GET route answer HEAD
# too. Readers never send HEAD; scanners and mail clients pre-fetching do: recorded, suspect.
@router.head("/c/{token}", include_in_schema=False)
def peek_click(follow: Click, session: SessionDep, now: NowDep) -> RedirectResponse:
    _record_once(session, follow, "click", now)
    return _redirect(follow.paper)


@router.head("/more/{token}", include_in_schema=False)
def peek_more(follow: More, session: SessionDep, now: NowDep) -> Response:
    _record_once(session, follow, "more", now)
    return Response(headers=PAGE_HEADERS)


@router.head("/less/{token}", include_in_schema=False)
def peek_less(follow: Less, session: SessionDep, now: NowDep) -> Response:
    _record_once(session, follow, "less", now)
    return Response(headers=PAGE_HEADERS)


@router.get(
    "/c/{token}",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={303: redirect("To the paper's own page.")},
)
async def follow_click(token: str, request: Request) -> RedirectResponse:
    """Record a click on a digest link and redirect to the paper's stored URL."""
    # The hot path of every digest, so it is lean: an async route whose dependencies are
    # plain calls (each sync dependency would cost a thread-pool hop), the token checked on
    # the event loop (a few microseconds of HMAC), and the database work as one statement on
    # the event loop (a click on a digest sent minutes ago) or, failing that, in one hop as
    # two statements on an autocommit connection, never a session and four ORM loads.
    settings, now = get_app_settings(request), get_now(request)
    link = _paper_link(settings, token, "click", now)
    agent = request.headers.get("user-agent")
    database = get_database(request)
    click = None
    if database.loop_writes is not None:  # PostgreSQL: the common click without a thread hop
        click = await store_reader_click(
            database.loop_writes, link.u, link.p, link.d, now,
            user_agent=agent, scanner_window_s=settings.scanner_window_s,
            burst_s=settings.scanner_burst_s,
        )  # fmt: skip
    if click is None:  # stored nothing: checked in full (or SQLite)
        click = await run_in_threadpool(_record_click, database, settings, link, agent, now)
    return _redirect_to(click.url)


@router.get("/more/{token}")
def more_like_this(follow: More, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Record "more like this" for a paper in a digest; clicking again adds nothing."""
    _record_once(session, follow, "more", now)
    return message_page("Thank you", f"We'll show you more papers like “{follow.paper.title}”.")


@router.get("/less/{token}")
def less_like_this(follow: Less, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Record "less like this" for a paper in a digest; clicking again adds nothing."""
    _record_once(session, follow, "less", now)
    return message_page("Thank you", f"We'll show you fewer papers like “{follow.paper.title}”.")


@router.get("/unsubscribe/{token}")
def confirm_unsubscribe(link: UnsubscribeLink, session: SessionDep) -> HTMLResponse:
    """Ask the subscriber to confirm; changes nothing, as mail scanners follow links."""
    user = _user(session, link)
    if user.status == "unsubscribed":
        return _unsubscribed_page(user)
    return unsubscribe_page(user.email)


@router.post("/unsubscribe/{token}", responses=TOO_LARGE)
def unsubscribe_now(link: UnsubscribeLink, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Unsubscribe at once (RFC 8058 one-click, any body); idempotent, never redirects."""
    user = _user(session, link)
    unsubscribe(session, user.id, now)
    return _unsubscribed_page(user)


def _unsubscribed_page(user: UserRow) -> HTMLResponse:
    return message_page("Unsubscribed", f"{user.email} will get no more Paperboy digests.")


def _paper(session: Session, paper_id: int) -> PaperRow:
    paper = session.get(PaperRow, paper_id)
    if paper is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This paper is gone.")
    return paper


def _user(session: Session, link: UserLink) -> UserRow:
    user = subscriber_of(session, link)
    if user is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This subscriber is gone.")
    return user


def _redirect(paper: PaperRow) -> RedirectResponse:
    return _redirect_to(paper.url)


def _redirect_to(url: str) -> RedirectResponse:
    # Papers come from outside feeds: a stored javascript: or data: URL is not followed.
    if urlsplit(url).scheme not in WEB_SCHEMES:
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This paper has no web page.")
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)


def _paper_link(settings: Settings, token: str, purpose: str, now: datetime) -> PaperLink:
    """The data of a ``purpose`` paper link; a 400 page, as ``signed_link`` gives, if bad."""
    try:
        return PaperLink.model_validate(
            read_token(Keyring.from_settings(settings), token, purpose, now)
        )
    except TokenError as exc:
        raise _invalid_link(str(exc)) from exc
    except ValidationError as exc:
        raise _invalid_link("the link carries unexpected data") from exc


def _invalid_link(reason: str) -> PageError:
    message = f"This link is invalid or has expired ({reason})."
    return PageError(status.HTTP_400_BAD_REQUEST, "Invalid link", message)


_GONE = {
    "paper_id": "This paper is gone.",
    "user_id": "This link is gone.",
    "url": "This paper has no web page.",
}


def _record_click(
    database: Database, settings: Settings, link: PaperLink, agent: str | None, now: datetime
) -> RecordedClick:
    # Autocommit: the one INSERT is the whole write, so BEGIN and COMMIT would only add
    # two round trips to every click. It has committed when execute returns: the redirect
    # is only sent for a stored click.
    with database.autocommit() as conn:
        try:
            return record_click(
                conn, link.u, link.p, link.d, now,
                user_agent=agent, scanner_window_s=settings.scanner_window_s,
                burst_s=settings.scanner_burst_s,
            )  # fmt: skip
        except SubscriberError as exc:  # the paper or the user was deleted since the mail
            raise PageError(status.HTTP_404_NOT_FOUND, "Not found", _GONE[exc.field]) from exc


def _record(session: Session, follow: Follow, kind: str, now: datetime) -> None:
    link = follow.link
    try:
        record_event(
            session, link.u, link.p, kind, now,
            digest_id=follow.digest_id, user_agent=follow.user_agent, suspect=follow.suspect,
            burst_s=follow.burst_s,
        )  # fmt: skip
    except SubscriberError as exc:  # the user (or paper) was deleted since the mail went out
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This link is gone.") from exc


def _record_once(session: Session, follow: Follow, kind: str, now: datetime) -> None:
    # No unique key on events, so two simultaneous clicks could still both land; rare, and
    # the recommender only sees one more vote. A scanner's earlier visit does not count as
    # the reader's, so the reader's own click is still recorded after it.
    link = follow.link
    seen = select(EventRow.id).where(
        EventRow.user_id == link.u,
        EventRow.paper_id == link.p,
        EventRow.kind == kind,
        EventRow.digest_id == follow.digest_id,
        EventRow.suspect.is_(follow.suspect),
    )
    if session.scalar(seen.limit(1)) is None:
        _record(session, follow, kind, now)


def _digest(session: Session, link: PaperLink) -> DigestRow | None:
    """The link's digest, or None when it is no longer stored (the event is kept anyway)."""
    if link.d is None:
        return None
    digest = session.get(DigestRow, link.d)
    return digest if digest is not None and digest.user_id == link.u else None
