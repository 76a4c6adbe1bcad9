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
_RECORD, _HEADER, _METADATA = f"{OAI}record", f"{OAI}header", f"{OAI}metadata"
_IDENTIFIER, _DATESTAMP = f"{OAI}identifier", f"{OAI}datestamp"
_ARXIV, _ID, _TITLE, _ABSTRACT = f"{ARXIV}arXiv", f"{ARXIV}id", f"{ARXIV}title", f"{ARXIV}abstract"
_AUTHORS, _AUTHOR, _CATEGORIES = f"{ARXIV}authors", f"{ARXIV}author", f"{ARXIV}categories"
_FORENAMES, _KEYNAME, _SUFFIX = f"{ARXIV}forenames", f"{ARXIV}keyname", f"{ARXIV}suffix"
_DOI, _JOURNAL_REF, _COMMENTS = f"{ARXIV}doi", f"{ARXIV}journal-ref", f"{ARXIV}comments"


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
    for record in listing:
        if record.tag != _RECORD:
            continue
        header, meta = _header_and_meta(record)
        identifier = _child_text(header, _IDENTIFIER) or "(no identifier)"
        stamps.append(_child_text(header, _DATESTAMP))
        if header is not None and header.get("status") == "deleted":
            skipped.append(Skipped(identifier, "deleted at the source", bad=False))
            continue
        try:
            papers.append(_paper(meta, source))
        except ValueError as exc:
            skipped.append(Skipped(identifier, str(exc)))
    token, total = _resumption(listing)
    return Page(papers, skipped, token, max(filter(None, stamps), default=None), total)


def _header_and_meta(record: ET.Element) -> tuple[ET.Element | None, ET.Element | None]:
    """A record's first ``<header>`` and the ``<arXiv>`` in its first ``<metadata>``."""
    # One walk over the record's children instead of path look-ups: ElementPath's parsing
    # of "metadata/arXiv" on every record cost more than reading the record (profiled).
    header = meta = None
    for child in record:
        if child.tag == _HEADER and header is None:
            header = child
        elif child.tag == _METADATA and meta is None:
            meta = child.find(_ARXIV)
    return header, meta


def _resumption(listing: ET.Element) -> tuple[str | None, int | None]:
    element = listing.find(f"{OAI}resumptionToken")
    if element is None:
        return None, None
    size = element.get("completeListSize", "")
    # An empty token element is how OAI-PMH says "that was the last page".
    return (element.text or "").strip() or None, int(size) if size.isdigit() else None


def _paper(meta: ET.Element | None, source: str) -> Paper:
    if meta is None:
        raise ValueError("no <arXiv> metadata (was metadataPrefix=arXiv asked for?)")
    fields = _fields(meta)
    raw_id = _text(fields.get(_ID))
    arxiv_id = normalise_arxiv_id(raw_id)
    if arxiv_id is None:
        raise ValueError(f"<id> {raw_id!r} is not an arXiv id")
    title = _text(fields.get(_TITLE))
    if not title:
        raise ValueError(f"{arxiv_id} has no <title>")
    return Paper(
        title=title,
        abstract=_text(fields.get(_ABSTRACT)),
        authors=_authors(fields.get(_AUTHORS)),
        categories=tuple(dict.fromkeys(_text(fields.get(_CATEGORIES)).split())),
        published=_date(fields, "created"),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        arxiv_id=arxiv_id,
        doi=_doi(fields),
        external_id=arxiv_id,
        source=source,
        updated=_date(fields, "updated"),
        journal_ref=_text(fields.get(_JOURNAL_REF)) or None,
        comments=_text(fields.get(_COMMENTS)) or None,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
    )


def _fields(meta: ET.Element) -> dict[str, ET.Element]:
    """The first child of ``meta`` of each tag, in one walk (a dozen ``find`` calls each
    scanned the children again: half of the parse's own time, profiled)."""
    fields: dict[str, ET.Element] = {}
    for child in meta:
        fields.setdefault(child.tag, child)
    return fields


def _authors(authors: ET.Element | None) -> tuple[str, ...]:
    if authors is None:
        return ()
    names = []
    for author in authors:
        if author.tag != _AUTHOR:
            continue
        parts = _fields(author)
        name = " ".join(
            part
            for part in (
                _text(parts.get(_FORENAMES)),
                _text(parts.get(_KEYNAME)),
                _text(parts.get(_SUFFIX)),
            )
            if part
        )
        if name:
            names.append(name)
    return tuple(names)


def _doi(fields: dict[str, ET.Element]) -> str | None:
    # arXiv lists several DOIs space-separated when a paper has more than one; keep the first.
    words = _text(fields.get(_DOI)).split()
    return normalise_doi(words[0]) if words else None


def _date(fields: dict[str, ET.Element], tag: str) -> datetime | None:
    value = _text(fields.get(f"{ARXIV}{tag}"))
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"<{tag}> is not a YYYY-MM-DD date: {value!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _child_text(parent: ET.Element | None, tag: str) -> str:
    """The text of ``parent``'s ``tag`` child with whitespace collapsed; "" if none."""
    return _text(None if parent is None else parent.find(tag))


def _text(child: ET.Element | None) -> str:
    """The text of ``child`` with whitespace collapsed; "" if None."""
    if child is None:
        return ""
    # arXiv's fields are plain text; only a nested element needs the slower itertext walk.
    text = child.text or "" if len(child) == 0 else "".join(child.itertext())
    return " ".join(text.split())
