"""The links in a digest e-mail: tracked clicks, more / less like this, unsubscribe.

Each link carries a signed token (``recsys.links``); a bad, expired or misused one gets a
400 page, never a redirect. A click redirects only to the paper's stored URL, never to one
taken from the request or the token, so these links cannot be used as an open redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import NowDep, SessionDep, SettingsDep
from api.pages import PAGE_HEADERS, PageError, message_page, unsubscribe_page
from api.schemas import PaperLink, UserLink
from recsys.db.models import DigestRow, EventRow, PaperRow, UserRow
from recsys.links import TokenError, read_token
from recsys.subscribers import SubscriberError, record_event, unsubscribe

router = APIRouter(
    tags=["links"],
    default_response_class=HTMLResponse,
    responses={
        400: {"description": "The link is malformed, tampered with, expired or misused."},
        404: {"description": "The link's paper or subscriber is gone."},
    },
)

LinkData = TypeVar("LinkData", bound=BaseModel)


def link_reader(purpose: str, model: type[LinkData]) -> Callable[..., LinkData]:
    """A dependency reading the path's ``token`` for ``purpose``; a bad one is a 400 page."""

    def read(token: str, settings: SettingsDep, now: NowDep) -> LinkData:
        try:
            return model.model_validate(read_token(settings.secret_key, token, purpose, now))
        except TokenError as exc:
            raise _invalid_link(str(exc)) from exc
        except ValidationError as exc:
            raise _invalid_link("the link carries unexpected data") from exc

    return read


def _invalid_link(reason: str) -> PageError:
    message = f"This link is invalid or has expired ({reason})."
    return PageError(status.HTTP_400_BAD_REQUEST, "Invalid link", message)


ClickLink = Annotated[PaperLink, Depends(link_reader("click", PaperLink))]
MoreLink = Annotated[PaperLink, Depends(link_reader("more", PaperLink))]
LessLink = Annotated[PaperLink, Depends(link_reader("less", PaperLink))]
UnsubscribeLink = Annotated[UserLink, Depends(link_reader("unsubscribe", UserLink))]


# The HEAD routes are declared before the GET ones: Starlette lets a GET route answer HEAD
# too, and link scanners and mail clients pre-fetch with HEAD, which must record nothing.
@router.head("/c/{token}", include_in_schema=False)
def peek_click(link: ClickLink, session: SessionDep) -> RedirectResponse:
    return _redirect(_paper(session, link.p))


@router.head("/more/{token}", include_in_schema=False)
def peek_more(link: MoreLink) -> Response:
    return Response(headers=PAGE_HEADERS)


@router.head("/less/{token}", include_in_schema=False)
def peek_less(link: LessLink) -> Response:
    return Response(headers=PAGE_HEADERS)


@router.get("/c/{token}", status_code=status.HTTP_303_SEE_OTHER)
def follow_click(link: ClickLink, session: SessionDep, now: NowDep) -> RedirectResponse:
    """Record a click on a digest link and redirect to the paper's stored URL."""
    paper = _paper(session, link.p)
    _record(session, link, "click", now, _digest_id(session, link))
    return _redirect(paper)


@router.get("/more/{token}")
def more_like_this(link: MoreLink, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Record "more like this" for a paper in a digest; clicking again adds nothing."""
    paper = _paper(session, link.p)
    _record_once(session, link, "more", now)
    return message_page("Thank you", f"We'll show you more papers like “{paper.title}”.")


@router.get("/less/{token}")
def less_like_this(link: LessLink, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Record "less like this" for a paper in a digest; clicking again adds nothing."""
    paper = _paper(session, link.p)
    _record_once(session, link, "less", now)
    return message_page("Thank you", f"We'll show you fewer papers like “{paper.title}”.")


@router.get("/unsubscribe/{token}")
def confirm_unsubscribe(link: UnsubscribeLink, session: SessionDep) -> HTMLResponse:
    """Ask the subscriber to confirm; changes nothing, as mail scanners follow links."""
    user = _user(session, link.u)
    if user.status == "unsubscribed":
        return _unsubscribed_page(user)
    return unsubscribe_page(user.email)


@router.post("/unsubscribe/{token}")
def unsubscribe_now(link: UnsubscribeLink, session: SessionDep, now: NowDep) -> HTMLResponse:
    """Unsubscribe at once (RFC 8058 one-click, any body); idempotent, never redirects."""
    user = _user(session, link.u)
    unsubscribe(session, user.id, now)
    return _unsubscribed_page(user)


def _unsubscribed_page(user: UserRow) -> HTMLResponse:
    return message_page("Unsubscribed", f"{user.email} will get no more Paperboy digests.")


def _paper(session: Session, paper_id: int) -> PaperRow:
    paper = session.get(PaperRow, paper_id)
    if paper is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This paper is gone.")
    return paper


def _user(session: Session, user_id: int) -> UserRow:
    user = session.get(UserRow, user_id)
    if user is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This subscriber is gone.")
    return user


def _redirect(paper: PaperRow) -> RedirectResponse:
    # Papers come from outside feeds: a stored javascript: or data: URL is not followed.
    if urlsplit(paper.url).scheme not in ("http", "https"):
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This paper has no web page.")
    return RedirectResponse(paper.url, status.HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)


def _record(
    session: Session, link: PaperLink, kind: str, now: datetime, digest_id: int | None
) -> None:
    try:
        record_event(session, link.u, link.p, kind, now, digest_id=digest_id)
    except SubscriberError as exc:  # the user (or paper) was deleted since the mail went out
        raise PageError(status.HTTP_404_NOT_FOUND, "Not found", "This link is gone.") from exc


def _record_once(session: Session, link: PaperLink, kind: str, now: datetime) -> None:
    # No unique key on events, so two simultaneous clicks could still both land; rare, and
    # the recommender only sees one more vote.
    digest_id = _digest_id(session, link)
    seen = select(EventRow.id).where(
        EventRow.user_id == link.u,
        EventRow.paper_id == link.p,
        EventRow.kind == kind,
        EventRow.digest_id == digest_id,
    )
    if session.scalar(seen.limit(1)) is None:
        _record(session, link, kind, now, digest_id)


def _digest_id(session: Session, link: PaperLink) -> int | None:
    """The link's digest, or None when it is no longer stored (the event is kept anyway)."""
    if link.d is None:
        return None
    digest = session.get(DigestRow, link.d)
    return link.d if digest is not None and digest.user_id == link.u else None
