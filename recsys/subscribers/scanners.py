"""Tell a reader's click from a link scanner's.

Mail security gateways (Microsoft Safe Links, Proofpoint, Mimecast, Barracuda, ...) and
chat previews fetch every link in a message, often with HEAD and usually within seconds of
delivery. Those fetches are recorded, flagged ``suspect``, and never counted as interest;
otherwise one scanner would "like" every paper in every digest it inspects.

Some scanners send a browser's User-Agent and fetch later than delivery; they still fetch
every link of a message within seconds, which no reader does: such a burst is discarded as
a whole (:func:`is_burst`), while a reader's single click counts at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

# Lower-case substrings of User-Agent headers sent by scanners, crawlers, link previews and
# HTTP libraries. A real reader's browser or mail app sends none of them.
SCANNER_AGENTS = (
    "bot",
    "crawler",
    "spider",
    "scanner",
    "preview",
    "safelinks",
    "microsoft office",
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "forcepoint",
    "fireeye",
    "trendmicro",
    "sophos",
    "symantec",
    "checkpoint",
    "zscaler",
    "cisco",
    "ironport",
    "virustotal",
    "facebookexternalhit",
    "whatsapp",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww-perl",
    "headlesschrome",
    "phantomjs",
)


def suspect_reason(
    method: str,
    user_agent: str | None,
    clicked_at: datetime,
    sent_at: datetime | None,
    window_s: float,
) -> str | None:
    """Why a click looks automated, or None when it looks like a reader's.

    Parameters
    ----------
    method : str
        The HTTP method; HEAD only checks a link, no reader clicks with it.
    user_agent : str or None
        The User-Agent header; a missing one is automated (every browser sends one).
    clicked_at, sent_at : datetime
        When the link was followed, and when its digest was sent (None if unknown).
    window_s : float
        Clicks less than this many seconds after sending are a gateway scanning the
        message on delivery: nobody opens, reads and clicks that fast.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 11, 21, tzinfo=UTC)
    >>> suspect_reason("GET", "Mozilla/5.0 (X11)", t + timedelta(hours=1), t, 10.0) is None
    True
    >>> suspect_reason("HEAD", "Mozilla/5.0 (X11)", t + timedelta(hours=1), t, 10.0)
    'HEAD request'
    """
    if method.upper() == "HEAD":
        return "HEAD request"
    agent = (user_agent or "").strip().lower()
    if not agent:
        return "no User-Agent"
    for marker in SCANNER_AGENTS:
        if marker in agent:
            return f"scanner User-Agent ({marker})"
    if sent_at is not None and 0 <= (clicked_at - sent_at).total_seconds() < window_s:
        return f"clicked within {window_s:g} s of delivery"
    return None


def is_burst(links: Iterable[tuple[int, str]]) -> bool:
    """Whether the links of one digest followed close together are a scanner's sweep.

    Parameters
    ----------
    links : iterable of (paper id, kind)
        Every link of the digest followed within the burst window of each other, the
        newest included; ``kind`` is ``"click"``, ``"more"`` or ``"less"``.

    Returns
    -------
    bool
        True for two or more different links. The same link twice is a double click.

    Examples
    --------
    >>> is_burst([(7, "click"), (7, "click")])
    False
    >>> is_burst([(7, "more"), (7, "less")])
    True
    """
    return len(set(links)) >= 2
