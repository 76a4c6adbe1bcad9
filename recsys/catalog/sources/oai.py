"""arXiv OAI-PMH: a ``ListRecords`` answer in the ``arXiv`` metadata format, parsed.

Pure: bytes in, a :class:`~recsys.catalog.sources.pages.Page` out. The fetch loop in
:mod:`recsys.catalog.harvest.fetch` sends the requests and follows resumption tokens.
Format: https://info.arxiv.org/help/oa/index.html and http://arxiv.org/OAI/arXiv.xsd.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi
from recsys.catalog.sources.pages import Page, Skipped
from recsys.domain import IngestError, Paper

OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
# The one OAI-PMH error that is an answer, not a failure: nothing changed since `from`.
NO_RECORDS = "noRecordsMatch"


def parse_list_records(body: bytes | str, source: str) -> Page:
    """Parse one ``ListRecords`` answer.

    Parameters
    ----------
    body : bytes or str
        The XML document as received.
    source : str
        The source's name, stored on each paper.

    Returns
    -------
    Page
        One paper per record (arXiv id without version, title and abstract with whitespace
        collapsed, authors as "Forenames Keyname", categories with the primary first,
        created/updated dates, DOI, journal reference, comments, abstract and PDF links),
        deleted and malformed records in ``skipped``, the resumption token (None when the
        list is complete) and the newest header datestamp. ``noRecordsMatch`` is an empty page.

    Raises
    ------
    IngestError
        Malformed XML (at its line), a document that is not an OAI-PMH answer, or an
        OAI-PMH error other than ``noRecordsMatch`` (with its code and message).
    """
    root = _root(body, source)
    error = root.find(f"{OAI}error")
    if error is not None:
        code = error.get("code", "")
        if code == NO_RECORDS:
            return Page()
        message = " ".join((error.text or "").split())
        raise IngestError(source, 0, f"OAI-PMH error {code or '(no code)'}: {message}")
    listing = root.find(f"{OAI}ListRecords")
    if listing is None:
        raise IngestError(source, 0, "OAI-PMH answer without <ListRecords>")
    return _page(listing, source)


def _root(body: bytes | str, source: str) -> ET.Element:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise IngestError(source, exc.position[0], f"malformed XML: {exc}") from None
    if root.tag != f"{OAI}OAI-PMH":
        raise IngestError(source, 1, f"expected an OAI-PMH answer, found <{root.tag}>")
    return root


def _page(listing: ET.Element, source: str) -> Page:
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    stamps: list[str] = []
    for record in listing.iterfind(f"{OAI}record"):
        header = record.find(f"{OAI}header")
        identifier = _child_text(header, f"{OAI}identifier") or "(no identifier)"
        stamps.append(_child_text(header, f"{OAI}datestamp"))
        if header is not None and header.get("status") == "deleted":
            skipped.append(Skipped(identifier, "deleted at the source", bad=False))
            continue
        try:
            papers.append(_paper(record, source))
        except ValueError as exc:
            skipped.append(Skipped(identifier, str(exc)))
    token, total = _resumption(listing)
    return Page(papers, skipped, token, max(filter(None, stamps), default=None), total)


def _resumption(listing: ET.Element) -> tuple[str | None, int | None]:
    element = listing.find(f"{OAI}resumptionToken")
    if element is None:
        return None, None
    size = element.get("completeListSize", "")
    # An empty token element is how OAI-PMH says "that was the last page".
    return (element.text or "").strip() or None, int(size) if size.isdigit() else None


def _paper(record: ET.Element, source: str) -> Paper:
    meta = record.find(f"{OAI}metadata/{ARXIV}arXiv")
    if meta is None:
        raise ValueError("no <arXiv> metadata (was metadataPrefix=arXiv asked for?)")
    raw_id = _child_text(meta, f"{ARXIV}id")
    arxiv_id = normalise_arxiv_id(raw_id)
    if arxiv_id is None:
        raise ValueError(f"<id> {raw_id!r} is not an arXiv id")
    title = _child_text(meta, f"{ARXIV}title")
    if not title:
        raise ValueError(f"{arxiv_id} has no <title>")
    return Paper(
        title=title,
        abstract=_child_text(meta, f"{ARXIV}abstract"),
        authors=_authors(meta),
        categories=tuple(dict.fromkeys(_child_text(meta, f"{ARXIV}categories").split())),
        published=_date(meta, "created"),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        arxiv_id=arxiv_id,
        doi=_doi(meta),
        external_id=arxiv_id,
        source=source,
        updated=_date(meta, "updated"),
        journal_ref=_child_text(meta, f"{ARXIV}journal-ref") or None,
        comments=_child_text(meta, f"{ARXIV}comments") or None,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
    )


def _authors(meta: ET.Element) -> tuple[str, ...]:
    names = []
    for author in meta.iterfind(f"{ARXIV}authors/{ARXIV}author"):
        parts = (
            _child_text(author, f"{ARXIV}forenames"),
            _child_text(author, f"{ARXIV}keyname"),
            _child_text(author, f"{ARXIV}suffix"),
        )
        name = " ".join(part for part in parts if part)
        if name:
            names.append(name)
    return tuple(names)


def _doi(meta: ET.Element) -> str | None:
    # arXiv lists several DOIs space-separated when a paper has more than one; keep the first.
    words = _child_text(meta, f"{ARXIV}doi").split()
    return normalise_doi(words[0]) if words else None


def _date(meta: ET.Element, tag: str) -> datetime | None:
    value = _child_text(meta, f"{ARXIV}{tag}")
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"<{tag}> is not a YYYY-MM-DD date: {value!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _child_text(parent: ET.Element | None, tag: str) -> str:
    """The text of ``parent``'s ``tag`` child with whitespace collapsed; "" if none."""
    child = None if parent is None else parent.find(tag)
    if child is None:
        return ""
    # arXiv's fields are plain text; only a nested element needs the slower itertext walk.
    text = child.text or "" if len(child) == 0 else "".join(child.itertext())
    return " ".join(text.split())
