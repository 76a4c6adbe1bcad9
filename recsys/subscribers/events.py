"""Feedback events: clicks and "more / less like this", the input of the next digest.

Each event is a row; a subscriber's content profile is rebuilt from their latest events at
scoring time, so today's clicks change tomorrow's digest without retraining. A click that
looks automated (a link scanner) is kept with ``suspect`` set and never counted, and so are
the links of one digest followed in a burst (:func:`discard_burst`), even earlier ones that
counted when they came.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import ReturningInsert

from recsys.db.models import DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import LoopWrites
from recsys.subscribers.accounts import SubscriberError
from recsys.subscribers.scanners import is_burst, suspect_reason

# Event kinds and the sign they give the user's content profile.
EVENT_WEIGHTS = {"click": 1.0, "more": 2.0, "seed": 2.0, "less": -2.0}
_MAX_AGENT_CHARS = 512
# Paper URLs come from outside feeds: only these are ever followed (no javascript:, data:).
WEB_SCHEMES = ("http", "https")


def record_event(
    session: Session,
    user_id: int,
    paper_id: int,
    kind: str,
    now: datetime,
    *,
    digest_id: int | None = None,
    user_agent: str | None = None,
    suspect: bool = False,
    burst_s: float = 0.0,
) -> EventRow:
    """Store one interaction; it changes the user's next digest without retraining.

    A ``suspect`` event (a link scanner's fetch) is kept for the record but never counted.
    With ``burst_s`` (a followed digest link), the event and the links of its digest
    followed within ``burst_s`` seconds are marked suspect when they make a burst.
    """
    if kind not in EVENT_WEIGHTS:
        raise SubscriberError("kind", f"must be one of {', '.join(EVENT_WEIGHTS)}")
    if session.get(UserRow, user_id) is None:
        raise SubscriberError("user_id", f"no user {user_id}")
    if session.get(PaperRow, paper_id) is None:
        raise SubscriberError("paper_id", f"no paper {paper_id}")
    event = EventRow(
        user_id=user_id,
        paper_id=paper_id,
        kind=kind,
        digest_id=digest_id,
        created_at=now,
        user_agent=user_agent[:_MAX_AGENT_CHARS] if user_agent else None,
        suspect=suspect,
    )
    session.add(event)
    session.flush()
    if digest_id is not None:
        # An ORM UPDATE: the session's copies of the marked events (this one too) follow.
        discard_burst(session, user_id, digest_id, now, burst_s)
    return event


def discard_burst(
    db: Session | Connection, user_id: int, digest_id: int, now: datetime, burst_s: float
) -> bool:
    """Mark suspect the links of a digest followed around ``now`` if they are a burst.

    A scanner with a browser's User-Agent fetches every link of a message within seconds;
    a reader follows one. So when the links of ``digest_id`` followed within ``burst_s``
    seconds of ``now`` (the new one stored already) are several
    (:func:`recsys.subscribers.scanners.is_burst`), all of them are marked suspect,
    including the first, which counted when it came: the next digest reads none of them.
    Each new link of a slow sweep looks back from its own time, so a chain is caught whole.

    Returns
    -------
    bool
        True when the links were a burst and were marked.
    """
    if burst_s <= 0:
        return False
    window = timedelta(seconds=burst_s)
    around = {"user_id": user_id, "digest_id": digest_id, "since": now - window}
    rows = db.execute(_LINKS_OF_DIGEST, {**around, "until": now + window}).all()
    if not is_burst((paper_id, kind) for _, paper_id, kind in rows):
        return False
    db.execute(
        update(EventRow).where(EventRow.id.in_([row[0] for row in rows])).values(suspect=True)
    )
    return True


@dataclass(frozen=True)
class Click:
    """A recorded click on a digest link: where it leads and whether it looked automated."""

    url: str
    suspect: bool


def record_click(
    conn: Connection,
    user_id: int,
    paper_id: int,
    digest_id: int | None,
    now: datetime,
    *,
    method: str = "GET",
    user_agent: str | None = None,
    scanner_window_s: float,
    burst_s: float,
) -> Click:
    """Store a click on a paper link, usually in one statement; return the paper's URL.

    The hot path of every digest, so no ORM objects, and the common click (a reader's, on a
    digest sent more than ``scanner_window_s`` ago, to a paper with an ``http(s)://`` URL,
    with no other link of that digest followed in the last ``burst_s``) is one
    ``INSERT ... SELECT ... RETURNING``. Any other click is checked in full, as
    :func:`record_event` would, in two statements: one query finds the paper, the user and
    the digest's send time (for :func:`recsys.subscribers.scanners.suspect_reason`), one ``INSERT``
    stores the event, and when a digest's links come in a burst one more marks them all
    suspect (:func:`discard_burst`). The digest is kept only when it is still stored and
    belongs to the user. Run it on an autocommit connection: the single ``INSERT`` is the
    whole write, so no transaction is needed around it.

    Parameters
    ----------
    conn : Connection
        A Core connection (autocommit, or committed by the caller).
    user_id, paper_id, digest_id : int
        From the signed link; ``digest_id`` may be None.
    now : datetime
        When the link was followed.
    method, user_agent : str
        The request's method and ``User-Agent``, for scanner detection.
    scanner_window_s : float
        Clicks this soon after the digest was sent are a scanner's.
    burst_s : float
        Several links of one digest followed this close together are a scanner's.

    Returns
    -------
    Click
        The paper's stored URL (to redirect to) and whether the click was flagged.

    Raises
    ------
    SubscriberError
        When the paper (``field="paper_id"``) or the user (``"user_id"``) is gone, or the
        paper's stored URL is not a web page (``"url"``); nothing is stored then.
    """
    event = _click_event(user_id, paper_id, digest_id, now, method, user_agent, scanner_window_s)
    stored = conn.execute(_STORE_CLICK, {**event, "burst_from": _burst_from(now, burst_s)}).first()
    if stored is not None:
        burst = _late_burst_params(event, burst_s)
        marked = burst is not None and conn.execute(_MARK_LATE_BURST, burst).first() is not None
        return Click(url=stored[0], suspect=event["suspect"] or marked)
    return _record_checked_click(conn, event, method, scanner_window_s, burst_s)


async def store_reader_click(
    writes: LoopWrites,
    user_id: int,
    paper_id: int,
    digest_id: int | None,
    now: datetime,
    *,
    method: str = "GET",
    user_agent: str | None = None,
    scanner_window_s: float,
    burst_s: float,
) -> Click | None:
    """The common click of :func:`record_click`, in its one statement, on the event loop.

    Returns None, having stored nothing, for any other click: pass that one to
    :func:`record_click`. ``now`` must be aware (it is bound without type processing).
    """
    event = _click_event(user_id, paper_id, digest_id, now, method, user_agent, scanner_window_s)
    stored = await writes.first(_STORE_CLICK, {**event, "burst_from": _burst_from(now, burst_s)})
    if stored is None:
        return None
    burst = _late_burst_params(event, burst_s)
    marked = burst is not None and await writes.first(_MARK_LATE_BURST, burst) is not None
    return Click(url=stored[0], suspect=event["suspect"] or marked)


def _click_event(
    user_id: int,
    paper_id: int,
    digest_id: int | None,
    now: datetime,
    method: str,
    user_agent: str | None,
    scanner_window_s: float,
) -> dict[str, Any]:
    # Without a send time suspect_reason judges the request alone; _STORE_CLICK stores the
    # click only when the send time cannot change that (none, or a window or more ago).
    suspect = suspect_reason(method, user_agent, now, None, scanner_window_s) is not None
    return {
        "user_id": user_id, "paper_id": paper_id, "kind": "click", "digest_id": digest_id,
        "created_at": now, "user_agent": user_agent[:_MAX_AGENT_CHARS] if user_agent else None,
        "suspect": suspect, "settled": now - timedelta(seconds=scanner_window_s),
    }  # fmt: skip


def _late_burst_params(event: dict[str, Any], burst_s: float) -> dict[str, Any] | None:
    """Bind values of :data:`_MARK_LATE_BURST` for a click just stored; None when there is
    no digest to make a burst of (or bursts are not checked)."""
    if event["digest_id"] is None or burst_s <= 0:
        return None
    window = timedelta(seconds=burst_s)
    now = event["created_at"]
    return {
        "b_user": event["user_id"], "b_digest": event["digest_id"],
        "b_paper": event["paper_id"], "b_kind": event["kind"],
        "b_since": now - window, "b_until": now + window,
    }  # fmt: skip


def _burst_from(now: datetime, burst_s: float) -> datetime:
    # Since when another followed link of the digest sends a click to the checked path.
    return now - timedelta(seconds=burst_s)


def _record_checked_click(
    conn: Connection, event: dict[str, Any], method: str, scanner_window_s: float, burst_s: float
) -> Click:
    """The click :data:`_STORE_CLICK` left alone: checked in Python, then stored or refused."""
    user_id, paper_id, now = event["user_id"], event["paper_id"], event["created_at"]
    found = conn.execute(_CLICK_TARGET, event).first()
    if found is None:
        raise SubscriberError("paper_id", f"no paper {paper_id}")
    url, user, digest, sent_at = found
    if user is None:
        raise SubscriberError("user_id", f"no user {user_id}")
    if urlsplit(url).scheme not in WEB_SCHEMES:  # a click that cannot lead anywhere is not one
        raise SubscriberError("url", f"paper {paper_id} has no web page: {url[:80]!r}")
    agent = event["user_agent"]
    suspect = suspect_reason(method, agent, now, sent_at, scanner_window_s) is not None
    conn.execute(_INSERT_EVENT, {**event, "digest_id": digest, "suspect": suspect})
    if digest is not None and discard_burst(conn, user_id, digest, now, burst_s):
        suspect = True
    return Click(url=url, suspect=suspect)


# Built once: constructing a statement per click cost more than running it. The digest
# joins only when it is the user's; a NULL digest id joins nothing.
_CLICK_TARGET = (
    select(PaperRow.url, UserRow.id, DigestRow.id, DigestRow.sent_at)
    .select_from(PaperRow)
    .outerjoin(UserRow, UserRow.id == bindparam("user_id"))
    .outerjoin(
        DigestRow,
        (DigestRow.id == bindparam("digest_id")) & (DigestRow.user_id == bindparam("user_id")),
    )
    .where(PaperRow.id == bindparam("paper_id"))
)
_INSERT_EVENT = insert(EventRow)
# The followed links of one digest around a time (events.user_id, created_at is indexed).
_FOLLOWED = ("click", "more", "less")
_LINKS_OF_DIGEST = select(EventRow.id, EventRow.paper_id, EventRow.kind).where(
    EventRow.user_id == bindparam("user_id"),
    EventRow.digest_id == bindparam("digest_id"),
    EventRow.kind.in_(_FOLLOWED),
    EventRow.created_at >= bindparam("since"),
    EventRow.created_at <= bindparam("until"),
)
_RECENT = aliased(EventRow, name="recent")
# The common click in one round trip. Its conditions only narrow what _record_checked_click
# accepts (any click they turn away goes there), so the rules stay in Python: the user and
# paper exist, the URL starts like a web page's, the digest's send time cannot make the
# click suspect, and no other link of the digest came lately (so it cannot make a burst).
# RETURNING may not name the joined tables (SQLite), hence the subquery, written out:
# SQLAlchemy does not correlate a subquery in RETURNING with the new row.
_URL_OF_STORED = "(SELECT p.url FROM papers AS p WHERE p.id = events.paper_id)"
_STORE_CLICK: ReturningInsert[Any] = (
    insert(EventRow)
    .from_select(
        ["user_id", "paper_id", "kind", "digest_id", "created_at", "user_agent", "suspect"],
        select(
            UserRow.id,
            PaperRow.id,
            bindparam("kind"),
            DigestRow.id,
            bindparam("created_at", type_=EventRow.created_at.type),
            bindparam("user_agent", type_=EventRow.user_agent.type),
            bindparam("suspect", type_=EventRow.suspect.type),
        )
        .select_from(PaperRow)
        .join(UserRow, UserRow.id == bindparam("user_id"))
        .outerjoin(
            DigestRow,
            (DigestRow.id == bindparam("digest_id")) & (DigestRow.user_id == bindparam("user_id")),
        )
        .where(
            PaperRow.id == bindparam("paper_id"),
            PaperRow.url.startswith("https://") | PaperRow.url.startswith("http://"),
            DigestRow.sent_at.is_(None) | (DigestRow.sent_at <= bindparam("settled")),
            # No other link of the digest lately: this one might start a burst, checked there.
            ~exists().where(
                _RECENT.user_id == bindparam("user_id"),
                _RECENT.digest_id == bindparam("digest_id"),
                _RECENT.created_at >= bindparam("burst_from", type_=EventRow.created_at.type),
            ),
        ),
    )
    .returning(literal_column(_URL_OF_STORED))
)


# The burst check of a click that _STORE_CLICK stored, as a statement of its own (its bind
# names are not column names: an UPDATE reserves those for its SET clause). _STORE_CLICK
# looked for other links of the digest in its own snapshot, so two links of one scanner
# sweep stored at the same moment (each statement committing as it runs, on PostgreSQL)
# cannot see each other. This runs after its click committed: of two such clicks, the one
# whose check runs later sees both, and marks every link of the digest in the window
# suspect when another link than this one is among them (``is_burst``: two different links).
def _followed(kind: Any) -> Any:
    # OR, not IN: an IN list compiles to an expanding parameter that LoopWrites, which
    # runs the compiled string as it is, cannot bind.
    return or_(*(kind == literal(k) for k in _FOLLOWED))


_LINK_IN_WINDOW = (
    (_RECENT.user_id == bindparam("b_user"))
    & (_RECENT.digest_id == bindparam("b_digest"))
    & _followed(_RECENT.kind)
    & (_RECENT.created_at >= bindparam("b_since", type_=EventRow.created_at.type))
    & (_RECENT.created_at <= bindparam("b_until", type_=EventRow.created_at.type))
)
_MARK_LATE_BURST = (
    update(EventRow)
    .where(
        EventRow.user_id == bindparam("b_user"),
        EventRow.digest_id == bindparam("b_digest"),
        _followed(EventRow.kind),
        EventRow.created_at >= bindparam("b_since", type_=EventRow.created_at.type),
        EventRow.created_at <= bindparam("b_until", type_=EventRow.created_at.type),
        exists().where(
            _LINK_IN_WINDOW,
            (_RECENT.paper_id != bindparam("b_paper")) | (_RECENT.kind != bindparam("b_kind")),
        ),
    )
    .values(suspect=True)
    .returning(EventRow.id)
)
