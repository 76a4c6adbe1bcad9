"""bioRxiv / medRxiv: one page of the ``details`` API (https://api.biorxiv.org), parsed.

Pure: JSON in, a :class:`~recsys.catalog.sources.pages.Page` out. The API lists the
preprint versions posted in a date interval, 100 a call, from a numeric cursor::

    {"messages": [{"status": "ok", "interval": "...", "cursor": 0, "count": 100,
                   "total": 312}],
     "collection": [{"doi": "10.1101/...", "version": "2", "date": "2024-01-02", ...}]}

Every version of a preprint has the DOI of the first, so a new version updates the paper.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from recsys.catalog.keys import normalise_doi
from recsys.catalog.sources.pages import Page, Skipped
from recsys.domain import IngestError, Paper

NO_POSTS = "no posts found"
SITES = {"biorxiv": "https://www.biorxiv.org", "medrxiv": "https://www.medrxiv.org"}


def parse_details(body: bytes | str, source: str) -> Page:
    """Parse one ``details`` answer.

    Returns
    -------
    Page
        One paper per item (DOI, title, abstract, authors, category, posting date as
        ``published`` for version 1 and as ``updated`` for later versions, the journal DOI
        once published, abstract and PDF links); malformed items in ``skipped``; ``next``
        the cursor of the following page, or None after the last; ``latest`` the newest date.

    Raises
    ------
    IngestError
        Not JSON, not a ``details`` answer, or a status other than ok / no posts found.
    """
    data = _json(body, source)
    message = _message(data, source)
    status = str(message.get("status", ""))
    if status == NO_POSTS:
        return Page()
    if status != "ok":
        raise IngestError(source, 0, f"bioRxiv API status {status!r}")
    items = data.get("collection")
    if not isinstance(items, list):
        raise IngestError(source, 0, "bioRxiv answer without a 'collection' list")
    papers, skipped = _items(items, source)
    dates = [str(item.get("date", "")) for item in items if isinstance(item, dict)]
    return Page(
        papers,
        skipped,
        _next_cursor(message, len(items), source),
        max(filter(None, dates), default=None),
        _int(message.get("total")),
    )


def _json(body: bytes | str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise IngestError(source, exc.lineno, f"malformed JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:  # json.loads decodes bytes itself, and lets this out
        raise IngestError(source, 0, f"body is not UTF-8 text: {exc.reason}") from None
    if not isinstance(data, dict):
        raise IngestError(source, 1, "expected a JSON object with 'messages' and 'collection'")
    return data


def _message(data: dict[str, Any], source: str) -> dict[str, Any]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise IngestError(source, 0, "bioRxiv answer without 'messages'")
    return messages[0]


def _items(items: list[Any], source: str) -> tuple[list[Paper], list[Skipped]]:
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    for number, item in enumerate(items, start=1):
        identifier = (
            str(item.get("doi") or f"item #{number}")
            if isinstance(item, dict)
            else (f"item #{number}")
        )
        try:
            papers.append(_paper(item, source))
        except ValueError as exc:
            skipped.append(Skipped(identifier, str(exc)))
    return papers, skipped


def _next_cursor(message: dict[str, Any], count: int, source: str) -> str | None:
    cursor, total = _int(message.get("cursor")), _int(message.get("total"))
    if cursor is None or total is None:
        raise IngestError(source, 0, "bioRxiv answer without a numeric cursor and total")
    following = cursor + count
    return str(following) if count and following < total else None


def _paper(item: Any, source: str) -> Paper:
    if not isinstance(item, dict):
        raise ValueError("item is not a JSON object")
    doi = normalise_doi(str(item.get("doi", "")))
    if doi is None:
        raise ValueError(f"'doi' {item.get('doi')!r} is not a DOI")
    title = " ".join(str(item.get("title", "")).split())
    if not title:
        raise ValueError(f"{doi} has no title")
    version = str(item.get("version", "1")).strip() or "1"
    posted = _date(item.get("date"), doi)
    page = f"{SITES.get(str(item.get('server', '')).lower(), SITES['biorxiv'])}/content/{doi}"
    return Paper(
        title=title,
        abstract=" ".join(str(item.get("abstract", "")).split()),
        authors=tuple(a.strip() for a in str(item.get("authors", "")).split(";") if a.strip()),
        categories=(str(item["category"]).strip(),) if item.get("category") else (),
        published=posted if version == "1" else None,
        url=f"{page}v{version}",
        doi=doi,
        external_id=doi,
        source=source,
        updated=None if version == "1" else posted,
        journal_ref=_journal(item.get("published")),
        pdf_url=f"{page}v{version}.full.pdf",
    )


def _journal(published: Any) -> str | None:
    doi = normalise_doi(str(published or ""))
    return f"published as https://doi.org/{doi}" if doi else None


def _date(value: Any, doi: str) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{doi}: 'date' is not YYYY-MM-DD: {value!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _int(value: Any) -> int | None:
    # The API sends counts as numbers or as strings ("total": "156"), varying by endpoint.
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
