"""Turn a ranked digest into one MIME e-mail: a text part, an HTML part and the list headers.

Rendering is pure apart from the ``Date`` and ``Message-ID`` headers; pass ``now`` to pin the
date. Nothing here opens a socket or a file beyond reading the packaged templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from recsys.delivery.summary import short_name, summarize

# Gmail clips messages over ~102 KB behind a "view entire message" link, which hides the
# footer and its unsubscribe link; staying under 100 kB keeps every digest whole.
MAX_MESSAGE_BYTES = 100_000
MAX_TITLE_CHARS = 300
MAX_REASON_CHARS = 300
MAX_AUTHOR_CHARS = 100
# "A. Lovelace, A. Turing et al.": two names fit one line on a phone.
MAX_LISTED_AUTHORS = 2
MAX_LISTED_CATEGORIES = 4
# The first ten papers get the full entry (summary, feedback links); the rest a compact one
# (title, byline, reason, PDF). A signed link is ~190 characters and a full entry carries six
# (three per part): 50 full entries are 124 kB, and 50 of the old three-line entries were
# already 109 kB. Ten is the default digest, so most readers see every entry in full.
MAX_FULL_ENTRIES = 10
# Phones show 40 to 70 characters of a subject; the top title is cut so " and 9 more" stays.
MAX_SUBJECT_CHARS = 90
ELLIPSIS = "\u2026"
# Headers holding URLs, written as set: one line, never folded or encoded.
UNFOLDED_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
# RFC 5322's hard limit on a line, CRLF excluded.
MAX_HEADER_LINE = 998


class MessagePolicy(EmailPolicy):
    """The standard policy, except that :data:`UNFOLDED_HEADERS` go out exactly as set.

    The standard policy folds a header longer than 78 characters; a URL has no space to
    fold at, so it becomes RFC 2047 encoded-words (``=?utf-8?q?=3Chttps...``), which mailbox
    providers do not read as a URL, and they then offer no one-click unsubscribe.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in UNFOLDED_HEADERS:
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in UNFOLDED_HEADERS:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# 7bit makes non-ASCII parts quoted-printable or base64, so the same bytes are valid over
# SMTP relays without 8BITMIME and in .eml files alike.
MESSAGE_POLICY = MessagePolicy(cte_type="7bit")
CONFIRMATION_SUBJECT = "Confirm your Paperboy subscription"
PREFERENCES_LINK_SUBJECT = "Your Paperboy preferences link"


# Slotted: a template-mode batch holds 10,000 lines at once, and a __dict__ each doubles the
# objects the garbage collector walks.
@dataclass(frozen=True, slots=True)
class DigestLine:
    """One recommended paper as it appears in a digest.

    Parameters
    ----------
    paper_id : int
        The paper's database id.
    title : str
        The paper title; whitespace is collapsed and very long titles are shortened.
    authors : tuple of str
        Author names in order; more than three are shown as ``"A, B, C et al."``.
    reason : str
        A one-line "why this paper" explanation.
    click_url : str
        Tracked link; our API records the click and redirects to the paper's abstract page.
    more_url, less_url : str
        Feedback links: "more like this" and "less like this".
    abstract : str
        The abstract; the digest shows a two-sentence extract of it.
    categories : tuple of str
        Subject categories (``"cs.LG"``); the first four are shown.
    published : date or None
        Publication date at the source.
    arxiv_id, doi : str or None
        Identifiers; the arXiv id is shown when there is one, else the DOI.
    pdf_url : str or None
        Direct link to the PDF, shown untracked (see :func:`_line_view`); dropped unless
        http(s), since it comes from outside feeds.
    """

    paper_id: int
    title: str
    authors: tuple[str, ...]
    reason: str
    click_url: str
    more_url: str
    less_url: str
    abstract: str = ""
    categories: tuple[str, ...] = ()
    published: date | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    pdf_url: str | None = None


@dataclass(frozen=True, slots=True)
class DigestEmail:
    """Everything needed to render one digest e-mail for one subscriber.

    Parameters
    ----------
    digest_id : int
        The digest row id; sent as ``X-Paperboy-Digest-Id`` and used in error messages.
    to_email : str
        Recipient address.
    to_name : str or None
        Recipient display name, if known.
    subject : str
        The Subject header.
    period_label : str
        Human label for the digest period, e.g. ``"Saturday 21 November 2026"``.
    items : tuple of DigestLine
        The ranked papers, best first; must not be empty.
    unsubscribe_url : str
        Signed one-click URL: GET shows a confirmation page, POST unsubscribes (RFC 8058).
    preferences_url : str or None
        Link to the subscriber's preferences page, shown in the footer when given.
    candidates : int or None
        How many new papers this digest was ranked from (its candidate pool), for the line
        "We read 27 new papers for you; here are the 10 closest."; left out when None.
    requested : int or None
        How many papers the subscriber asked for; a digest holding fewer (a thin day: the
        rest did not clear their relevance bar) says so in one sentence, "Only 3 new papers
        cleared your bar today."; left out when None.
    """

    digest_id: int
    to_email: str
    to_name: str | None
    subject: str
    period_label: str
    items: tuple[DigestLine, ...]
    unsubscribe_url: str
    preferences_url: str | None = None
    candidates: int | None = None
    requested: int | None = None


def compose(digest: DigestEmail, from_email: str, *, now: datetime | None = None) -> EmailMessage:
    """Render a digest as a ``multipart/alternative`` message (text part first, then HTML).

    Parameters
    ----------
    digest : DigestEmail
        The digest to render.
    from_email : str
        Sender, ``"Name <addr@domain>"`` or ``"addr@domain"``; its domain names the Message-ID.
    now : datetime, optional
        Value of the ``Date`` header (timezone-aware); the current UTC time when omitted.

    Returns
    -------
    EmailMessage
        The message with From, To, Subject, Date, Message-ID, List-Id, List-Unsubscribe,
        List-Unsubscribe-Post and X-Paperboy-Digest-Id headers.

    Raises
    ------
    ValueError
        If the digest has no items, a link is not http(s), an address is malformed, or the
        rendered message is not under ``MAX_MESSAGE_BYTES`` even after shortening long
        titles and reasons. The message names the digest id.
    """
    _validate(digest)
    context = _template_context(digest)
    msg = EmailMessage(policy=MESSAGE_POLICY)
    _set_headers(msg, digest, from_email, now or datetime.now(UTC))
    msg.set_content(_render("digest.txt.j2", context))
    msg.add_alternative(_render("digest.html.j2", context), subtype="html")
    _check_size(msg, digest.digest_id)
    return msg


@dataclass(frozen=True)
class ConfirmationEmail:
    """The double opt-in e-mail sent after a sign-up.

    Parameters
    ----------
    user_id : int
        The pending subscriber; names the Message-ID.
    to_email : str
        The address to confirm.
    to_name : str or None
        Recipient display name, if given at sign-up.
    confirm_url : str
        Signed link to the confirmation page (GET shows a button, POST confirms).
    expires_days : int
        How long the link works, told to the reader.
    """

    user_id: int
    to_email: str
    to_name: str | None
    confirm_url: str
    expires_days: int


def compose_confirmation(
    email: ConfirmationEmail, from_email: str, *, now: datetime | None = None
) -> EmailMessage:
    """Render the confirmation e-mail as ``multipart/alternative`` (text, then HTML).

    It carries no ``List-Unsubscribe`` header: it is a one-off reply to the reader's own
    request, not list mail, and ignoring it is how one declines.

    Raises
    ------
    ValueError
        If the address is malformed or the link is not http(s).
    """
    if "@" not in email.to_email:
        raise ValueError(f"confirmation: to_email {email.to_email!r} is not an e-mail address")
    if not email.confirm_url.startswith(("https://", "http://")):
        raise ValueError(f"confirmation: confirm_url must be http(s), got {email.confirm_url!r}")
    context = {
        "to_name": email.to_name,
        "confirm_url": email.confirm_url,
        "expires_days": email.expires_days,
    }
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["From"] = from_email
    msg["To"] = Address(display_name=email.to_name or "", addr_spec=email.to_email)
    msg["Subject"] = CONFIRMATION_SUBJECT
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(
        idstring=f"confirm-{email.user_id}", domain=_sender_domain(from_email)
    )
    msg.set_content(_render("confirm.txt.j2", context))
    msg.add_alternative(_render("confirm.html.j2", context), subtype="html")
    return msg


@dataclass(frozen=True)
class PreferencesLinkEmail:
    """A fresh link to the preferences page, sent when a subscriber asks for one.

    It holds nothing the requester typed: whoever asked, only the address's owner reads it.
    """

    user_id: int
    to_email: str
    preferences_url: str
    unsubscribe_url: str
    expires_days: int


def compose_preferences_link(
    email: PreferencesLinkEmail, from_email: str, *, now: datetime | None = None
) -> EmailMessage:
    """Render the preferences-link e-mail as ``multipart/alternative`` (text, then HTML).

    Raises
    ------
    ValueError
        If the address is malformed or a link is not http(s).
    """
    if "@" not in email.to_email:
        raise ValueError(f"preferences link: to_email {email.to_email!r} is not an address")
    for url in (email.preferences_url, email.unsubscribe_url):
        if not _is_http(url):
            raise ValueError(f"preferences link: links must be http(s), got {url!r}")
    context = {
        "preferences_url": email.preferences_url,
        "unsubscribe_url": email.unsubscribe_url,
        "expires_days": email.expires_days,
    }
    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["From"] = from_email
    msg["To"] = email.to_email
    msg["Subject"] = PREFERENCES_LINK_SUBJECT
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(
        idstring=f"preferences-{email.user_id}", domain=_sender_domain(from_email)
    )
    msg.set_content(_render("preferences_link.txt.j2", context))
    msg.add_alternative(_render("preferences_link.html.j2", context), subtype="html")
    return msg


def html_part(message: EmailMessage) -> str:
    """The decoded ``text/html`` body of a composed message.

    Raises
    ------
    ValueError
        If the message has no HTML part.
    """
    return _body(message, "html")


def text_part(message: EmailMessage) -> str:
    """The decoded ``text/plain`` body of a composed message.

    Raises
    ------
    ValueError
        If the message has no plain-text part.
    """
    return _body(message, "plain")


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        raise ValueError(f"message {message['Message-ID']} has no text/{subtype} part")
    content = part.get_content()
    assert isinstance(content, str)  # text/* parts always decode to str
    return content


# Validation ------------------------------------------------------------------------------


def _validate(digest: DigestEmail) -> None:
    where = f"digest {digest.digest_id}"
    if not digest.items:
        raise ValueError(f"{where}: has no items; mark it skipped instead of sending it")
    if "@" not in digest.to_email:
        raise ValueError(f"{where}: to_email {digest.to_email!r} is not an e-mail address")
    # Links come from our own API; anything else (javascript:, relative) is a bug upstream
    # and would either break in mail clients or be an injection vector.
    if all(_is_http(url) for url in _url_values(digest)):
        return  # the usual case, checked without naming every field
    for field, url in _urls(digest):
        if not _is_http(url):
            raise ValueError(f"{where}: {field} must be an http(s) URL, got {url!r}")


def _is_http(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _url_values(digest: DigestEmail) -> list[str]:
    urls = [digest.unsubscribe_url]
    if digest.preferences_url is not None:
        urls.append(digest.preferences_url)
    for item in digest.items:
        urls += (item.click_url, item.more_url, item.less_url)
    return urls


def _urls(digest: DigestEmail) -> list[tuple[str, str]]:
    urls = [("unsubscribe_url", digest.unsubscribe_url)]
    if digest.preferences_url is not None:
        urls.append(("preferences_url", digest.preferences_url))
    for i, item in enumerate(digest.items):
        urls += [
            (f"items[{i}].click_url", item.click_url),
            (f"items[{i}].more_url", item.more_url),
            (f"items[{i}].less_url", item.less_url),
        ]
    return urls


def _check_size(msg: EmailMessage, digest_id: int) -> None:
    size = len(msg.as_bytes())
    if size >= MAX_MESSAGE_BYTES:
        raise ValueError(
            f"digest {digest_id}: message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte "
            "limit; send fewer items"
        )


# Headers ---------------------------------------------------------------------------------


def _set_headers(msg: EmailMessage, digest: DigestEmail, from_email: str, now: datetime) -> None:
    msg["From"] = from_email
    msg["To"] = Address(display_name=digest.to_name or "", addr_spec=digest.to_email)
    msg["Subject"] = digest.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(
        idstring=f"digest-{digest.digest_id}", domain=_sender_domain(from_email)
    )
    # RFC 2919: lets readers filter and mailbox providers group the digests as one list.
    msg["List-Id"] = list_id(from_email)
    # RFC 2369 + RFC 8058: mailbox providers show an "Unsubscribe" button and POST to the URL.
    msg["List-Unsubscribe"] = _one_line(digest, f"<{digest.unsubscribe_url}>")
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Paperboy-Digest-Id"] = str(digest.digest_id)


def list_id(from_email: str) -> str:
    """The ``List-Id`` of every digest from ``from_email``: ``Paperboy digests <digest.DOMAIN>``."""
    return f"Paperboy digests <digest.{_sender_domain(from_email)}>"


def subject_line(top_title: str, count: int, period: str) -> str:
    """The subject "Today: <top title> and 9 more", the title cut to fit a phone's line.

    Weekly digests (period ``2026-W47``) say "This week:".
    """
    when = "This week" if "-W" in period else "Today"
    more = f" and {count - 1} more" if count > 1 else ""
    room = MAX_SUBJECT_CHARS - len(when) - 2 - len(more)
    return f"{when}: {_shorten(top_title, room)}{more}"


def _one_line(digest: DigestEmail, value: str) -> str:
    """``value`` when it can be written unfolded: printable ASCII that fits on one line."""
    fits = len("List-Unsubscribe: ") + len(value) <= MAX_HEADER_LINE
    if not (value.isascii() and value.isprintable() and fits):
        raise ValueError(
            f"digest {digest.digest_id}: unsubscribe_url must be printable ASCII of at most "
            f"{MAX_HEADER_LINE - 20} characters"
        )
    return value


def _sender_domain(from_email: str) -> str:
    _, addr = parseaddr(from_email)
    local, _, domain = addr.rpartition("@")
    if not local or not domain:
        raise ValueError(f"from_email {from_email!r} is not an address like 'Name <a@b.org>'")
    return domain


# Rendering -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Escape only the HTML template: escaping the text part would show "&amp;" to readers.
    # StrictUndefined makes a misspelt variable fail the render instead of printing nothing.
    return Environment(
        loader=PackageLoader("recsys.delivery", "templates"),
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, context: dict[str, Any]) -> str:
    return _environment().get_template(template).render(context)


def _template_context(digest: DigestEmail) -> dict[str, Any]:
    return {
        "subject": digest.subject,
        "period_label": digest.period_label,
        "to_name": digest.to_name,
        "intro": _intro(len(digest.items)),
        "header": _header(digest.candidates, len(digest.items)),
        "thin": thin_day_line(len(digest.items), digest.requested),
        "items": [_line_view(item, n < MAX_FULL_ENTRIES) for n, item in enumerate(digest.items)],
        "unsubscribe_url": digest.unsubscribe_url,
        "preferences_url": digest.preferences_url,
    }


def _intro(count: int) -> str:
    # Completes "Here ..." / "Hi Ada, here ..." in both templates.
    papers = "is the paper" if count == 1 else f"are the {count} papers"
    return f"{papers} we picked for you."


def _header(candidates: int | None, count: int) -> str:
    """The line "We read 27 new papers for you; here are the 10 closest.", or "" if unknown."""
    if candidates is None or candidates < count:
        return ""  # digests ranked before pools were logged, or a pool that does not add up
    papers = "1 new paper" if candidates == 1 else f"{candidates} new papers"
    if candidates == count:
        shown = "here it is" if count == 1 else "here they all are"
    else:
        shown = "here is the closest" if count == 1 else f"here are the {count} closest"
    return f"We read {papers} for you; {shown}."


def thin_day_line(count: int, requested: int | None) -> str:
    """ "Only 3 new papers cleared your bar today." when fewer than asked for, else ""."""
    if requested is None or count >= requested:
        return ""
    papers = "1 new paper" if count == 1 else f"{count} new papers"
    return f"Only {papers} cleared your bar today."


def _line_view(item: DigestLine, full: bool = True) -> dict[str, Any]:
    # The title and "Abstract" links are the tracked click (the API redirects to the stored
    # abstract page). The PDF link is plain: the click route redirects only to the paper's
    # stored URL, by design, so it can never be an open redirect; tracking the PDF needs a
    # second signed target in the API, and the abstract click already records the interest.
    return {
        "title": _shorten(item.title, MAX_TITLE_CHARS),
        "authors": short_authors(tuple(item.authors)),
        "meta": _meta(item),
        "full": full,
        "summary": summarize(item.abstract) if full else "",
        "reason": _shorten(item.reason, MAX_REASON_CHARS),
        "click_url": item.click_url,
        "pdf_url": item.pdf_url if item.pdf_url and _is_http(item.pdf_url) else "",
        "more_url": item.more_url,
        "less_url": item.less_url,
    }


def _meta(item: DigestLine) -> str:
    return _meta_line(item.arxiv_id, item.doi, tuple(item.categories), item.published)


# Cached on the paper's fields: a template-mode batch builds this line 10,000 times.
@lru_cache(maxsize=8192)
def _meta_line(
    arxiv_id: str | None, doi: str | None, categories: tuple[str, ...], published: date | None
) -> str:
    """The identifier, categories and date: "arXiv:2411.01234 · cs.LG, stat.ML · 21 Nov 2026"."""
    ident = f"arXiv:{arxiv_id}" if arxiv_id else (f"doi:{doi}" if doi else "")
    cats = ", ".join(categories[:MAX_LISTED_CATEGORIES])
    if len(categories) > MAX_LISTED_CATEGORIES:
        cats += f" +{len(categories) - MAX_LISTED_CATEGORIES}"
    day = f"{published.day} {published:%b %Y}" if published else ""
    return " \u00b7 ".join(part for part in (ident, cats, day) if part)


@lru_cache(maxsize=4096)
def short_authors(authors: tuple[str, ...]) -> str:
    """Authors as shown in a digest: initials and surnames, two of them, then "et al.".

    Examples
    --------
    >>> short_authors(("Ada Lovelace", "Alan Turing", "Grace Hopper"))
    'A. Lovelace, A. Turing et al.'
    """
    names = [_shorten(short_name(n), MAX_AUTHOR_CHARS) for n in authors[:MAX_LISTED_AUTHORS]]
    label = ", ".join(names)
    return f"{label} et al." if len(authors) > MAX_LISTED_AUTHORS else label


# Cached: a template-mode batch shows the same few hundred papers across 1,000 digests.
@lru_cache(maxsize=8192)
def _shorten(text: str, limit: int) -> str:
    # Titles from arXiv carry line breaks and runs of spaces; one line reads better in mail.
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    # Break at a word boundary when one is reasonably close, so no half-word dangles.
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + ELLIPSIS
