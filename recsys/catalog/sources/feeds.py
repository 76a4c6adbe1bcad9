"""RSS 2.0 and Atom feeds, read with ``feedparser``: arXiv's daily feeds and journal feeds.

Pure: bytes in, a :class:`~recsys.catalog.sources.pages.Page` out. arXiv's feeds
(https://info.arxiv.org/help/rss_specifications.html) announce each paper as ``new``,
``cross`` (a cross-list into this category), ``replace`` or ``replace-cross`` (a new
version): all of them update the one paper keyed by its arXiv id; a replacement sets the
paper's ``updated`` date and leaves its first ``published`` date alone.
"""

from __future__ import annotations

import calendar
import html
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi
from recsys.catalog.sources.pages import Page, Skipped
from recsys.domain import IngestError, Paper

# "arXiv:2409.01234v1 Announce Type: new \nAbstract: We show ..." in arXiv's descriptions.
_ARXIV_PREAMBLE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*(?:Abstract:\s*)?", re.IGNORECASE
)
_TAG = re.compile(r"<[^>]+>")
_AUTHOR_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_REPLACEMENTS = frozenset({"replace", "replace-cross"})


def parse_feed(body: bytes | str, source: str) -> Page:
    """Parse an RSS 2.0 or Atom feed into papers.

    Parameters
    ----------
    body : bytes or str
        The feed as received.
    source : str
        The source's name, stored on each paper.

    Returns
    -------
    Page
        One paper per entry with a title (arXiv id when the entry is an arXiv
        announcement, DOI from ``prism:doi``, ``dc:identifier`` or ``arxiv:DOI``, authors,
        categories, dates, journal reference, links); entries without a title in
        ``skipped``; ``latest`` is the newest entry date. Feeds have no paging.

    Raises
    ------
    IngestError
        When the document is not a feed at all (feedparser found no feed version and no
        entries), carrying feedparser's reason.
    """
    # A stream, never the body itself: feedparser fetches a str that looks like a URL and
    # opens one that names a local file, so a source answering "/etc/..." would be read.
    data = body.encode("utf-8") if isinstance(body, str) else body
    parsed = feedparser.parse(io.BytesIO(data))
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no RSS or Atom feed found"
        raise IngestError(source, _bozo_line(parsed), f"not an RSS or Atom feed: {reason}")
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            papers.append(_paper(entry, source))
        except ValueError as exc:
            skipped.append(Skipped(_identifier(entry, number), str(exc)))
    stamps = [p.updated or p.published for p in papers]
    latest = max((s for s in stamps if s is not None), default=None)
    return Page(papers, skipped, None, latest.isoformat() if latest else None)


def _bozo_line(parsed: Any) -> int:
    exc = parsed.get("bozo_exception")
    getline = getattr(exc, "getLineNumber", None)
    return int(getline()) if callable(getline) else 0


def _identifier(entry: Any, number: int) -> str:
    return str(entry.get("id") or entry.get("link") or f"entry #{number}")


def _paper(entry: Any, source: str) -> Paper:
    title = _clean(entry.get("title", ""))
    if not title:
        raise ValueError("entry has no title")
    arxiv_id = _arxiv_id(entry)
    stamp = _stamp(entry)
    replacement = entry.get("arxiv_announce_type", "").strip().lower() in _REPLACEMENTS
    return Paper(
        title=title,
        abstract=_ARXIV_PREAMBLE.sub("", _clean(entry.get("summary", ""))),
        authors=_authors(entry, one_field=arxiv_id is not None),
        categories=tuple(dict.fromkeys(t["term"] for t in entry.get("tags", []) if t.get("term"))),
        published=None if replacement else stamp,
        url=entry.get("link") or (f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None),
        arxiv_id=arxiv_id,
        doi=_doi(entry),
        external_id=_external_id(entry, arxiv_id),
        source=source,
        updated=stamp if replacement else _parsed_time(dict.get(entry, "updated_parsed")),
        journal_ref=_journal(entry),
        comments=_clean(entry.get("arxiv_comment", "")) or None,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else _pdf_link(entry),
    )


def _arxiv_id(entry: Any) -> str | None:
    """The arXiv id of an arXiv announcement: its ``oai:arXiv.org:`` guid or abs link."""
    guid = str(entry.get("id", ""))
    if guid.lower().startswith("oai:arxiv.org:"):
        return normalise_arxiv_id(guid.split(":", 2)[2])
    link = str(entry.get("link", ""))
    return normalise_arxiv_id(link) if "arxiv.org/abs/" in link else None


def _external_id(entry: Any, arxiv_id: str | None) -> str | None:
    found = arxiv_id or entry.get("id") or entry.get("link")
    # The column holds 255 characters; a longer id (some feeds use whole URLs) is not kept.
    return str(found) if found and len(str(found)) <= 255 else None


def _authors(entry: Any, one_field: bool) -> tuple[str, ...]:
    names = [a.get("name", "") for a in entry.get("authors", []) if isinstance(a, dict)]
    if one_field and len(names) == 1:
        # arXiv puts every author into one dc:creator, comma-separated. Journals give one
        # creator per author, often "Surname, Given", which a split would cut in two.
        names = _AUTHOR_SPLIT.split(names[0])
    return tuple(name for name in (_clean(n) for n in names) if name)


def _doi(entry: Any) -> str | None:
    for key in ("prism_doi", "arxiv_doi", "dc_identifier"):
        found = normalise_doi(str(entry.get(key, "")).split()[0] if entry.get(key) else None)
        if found:
            return found
    return None


def _journal(entry: Any) -> str | None:
    # arXiv's journal reference, else the journal a publisher's feed names (PRISM).
    for key in ("arxiv_journal_reference", "prism_publicationname"):
        text = _clean(str(entry.get(key, "")))
        if text:
            return text
    return None


def _pdf_link(entry: Any) -> str | None:
    for link in entry.get("links", []):
        if link.get("type") == "application/pdf" or link.get("title") == "pdf":
            return str(link.get("href")) or None
    return None


def _stamp(entry: Any) -> datetime | None:
    # dict.get: feedparser's own get() answers for a missing updated_parsed with the
    # published date (and a deprecation warning), which would make every paper "revised".
    return _parsed_time(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed"))


def _parsed_time(value: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date format it knows to a UTC struct_time.
    return None if value is None else datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def _clean(text: str) -> str:
    """Text with HTML tags dropped, entities decoded and whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())
