"""The one place a :class:`~recsys.domain.Paper` is built from parsed fields.

Every parser (JSON Lines, CSV, arXiv Atom, seed-page dumps) hands its record here as a
mapping of field name to value, so every source gets the same checks, each failing with an
:class:`~recsys.domain.IngestError` that names the file, line and field:

- text holds no NUL or other control characters and no lone surrogates (PostgreSQL refuses
  NUL in ``text`` and UTF-8 cannot encode a surrogate, so either would fail the whole
  upsert far from the line that caused it, and only on one backend);
- lengths fit the ``papers`` columns (``arxiv_id`` 64, ``doi`` and ``id`` 255 characters):
  SQLite ignores ``VARCHAR(n)``, PostgreSQL refuses the row, so a file that loads in the
  embedded mode would break production;
- dates fall between years :data:`MIN_YEAR` and :data:`MAX_YEAR` and are stored in UTC
  (an offset on ``0001-01-01`` overflows when converted);
- ``url`` is stored only when it is an ``http(s)`` URL with a host. Anything else (a
  ``javascript:`` URL would become a live link on pages that hold an account token) is
  dropped and reported through ``warn``; the record itself is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi
from recsys.domain import IngestError, Paper

Warn = Callable[[IngestError], None]

# Column widths of recsys/db/models.py PaperRow.
MAX_ARXIV_ID_CHARS = 64
MAX_DOI_CHARS = 255
MAX_ID_CHARS = 255
# Text columns have no width; these caps keep one record from filling a digest or the
# embedder. The longest real title in the seed dumps is 170 characters, abstracts stay
# under 5,000 (arXiv caps them at 1,920), author lists under 3,500 names (ATLAS papers).
MAX_TITLE_CHARS = 2_000
MAX_ABSTRACT_CHARS = 50_000
MAX_URL_CHARS = 2_048
MAX_LIST_ITEMS = 10_000
MAX_NAME_CHARS = 1_000
# Scholarly publishing starts in 1665; a year past 2200 is a typo, and year 1 or 9999 with
# an offset overflows when converted to UTC.
MIN_YEAR = 1600
MAX_YEAR = 2200

# C0 and C1 controls bar tab, newline and carriage return (whitespace the cleaning
# collapses), and the surrogate range, which only a lone surrogate can fall in.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def paper_from_fields(
    record: Mapping[str, object],
    source: str,
    line: int,
    *,
    require_id: bool,
    warn: Warn | None = None,
) -> Paper:
    """Check one record's fields and build its :class:`Paper`.

    Parameters
    ----------
    record : mapping
        ``id``, ``title`` (required, non-empty), ``abstract``, ``authors`` and
        ``categories`` (lists of str), ``published`` (ISO-8601 date or datetime; naive
        values are UTC), ``url``, ``doi`` and ``arxiv_id``; None means absent, other keys
        are ignored.
    source, line : str, int
        Where the record came from, for the paper and for errors.
    require_id : bool
        Whether ``id`` must be present (JSONL) or may be missing (CSV, dumps).
    warn : callable, optional
        Receives an :class:`IngestError` for each value dropped without refusing the
        record (a non-http(s) ``url``); without it the value is still dropped.

    Raises
    ------
    IngestError
        Naming the first bad field and what is wrong with it.
    """
    fields = _Fields(record, source, line)
    if require_id:
        external_id: str | None = fields.required("id", MAX_ID_CHARS)
    else:
        external_id = fields.text("id", MAX_ID_CHARS)
    return Paper(
        title=fields.required("title", MAX_TITLE_CHARS),
        abstract=fields.text("abstract", MAX_ABSTRACT_CHARS) or "",
        authors=fields.strings("authors"),
        categories=fields.strings("categories"),
        published=fields.timestamp("published"),
        url=fields.url(warn),
        arxiv_id=fields.arxiv_id(fallback=external_id),
        doi=fields.doi(),
        external_id=external_id,
        source=source,
        line=line,
    )


class _Fields:
    """Typed access to one record's fields; every failure names the field."""

    def __init__(self, record: Mapping[str, object], source: str, line: int) -> None:
        self._record = record
        self._source = source
        self._line = line

    def fail(self, name: str, problem: str) -> IngestError:
        return IngestError(self._source, self._line, f"field {name!r} {problem}")

    def text(self, name: str, limit: int | None = None) -> str | None:
        """The field with whitespace collapsed; None when absent, null or blank."""
        value = self._record.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        return self._clean(name, value, limit) if value and value.strip() else None

    def required(self, name: str, limit: int) -> str:
        value = self.text(name, limit)
        if value is None:
            raise self.fail(name, "is missing or empty")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._record.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(name, f"must be a list of strings, got {_describe(value)}")
        if len(value) > MAX_LIST_ITEMS:
            raise self.fail(name, f"has {len(value):,} items (at most {MAX_LIST_ITEMS:,})")
        cleaned = (
            self._clean(f"{name}[{i}]", item, MAX_NAME_CHARS) for i, item in enumerate(value)
        )
        return tuple(item for item in cleaned if item)

    def _clean(self, name: str, value: str, limit: int | None) -> str:
        problem = text_problem(value)
        if problem:
            raise self.fail(name, problem)
        cleaned = " ".join(value.split())
        if limit is not None and len(cleaned) > limit:
            raise self.fail(name, f"is {len(cleaned):,} characters long (at most {limit:,})")
        return cleaned

    def timestamp(self, name: str) -> datetime | None:
        value = self.text(name, 64)
        if value is None:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(name, f"is not an ISO-8601 date or datetime: {value!r}") from None
        if not MIN_YEAR <= stamp.year <= MAX_YEAR:
            raise self.fail(name, f"year {stamp.year} is outside {MIN_YEAR}..{MAX_YEAR}")
        # Naive stamps are UTC by convention, so ordering across sources stays correct.
        return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)

    def url(self, warn: Warn | None) -> str | None:
        value = self.text("url")
        if value is None or is_web_url(value):
            return value
        if warn is not None:
            shown = value if len(value) <= 80 else value[:77] + "..."
            warn(self.fail("url", f"is not an http(s) URL, dropped: {shown!r}"))
        return None

    def arxiv_id(self, *, fallback: str | None) -> str | None:
        value = self.text("arxiv_id", 255)
        if value is None:
            return normalise_arxiv_id(fallback)
        normalised = normalise_arxiv_id(value)
        if normalised is None or len(normalised) > MAX_ARXIV_ID_CHARS:
            raise self.fail("arxiv_id", f"is not an arXiv id: {_shown(value)}")
        return normalised

    def doi(self) -> str | None:
        value = self.text("doi")
        if value is None:
            return None
        normalised = normalise_doi(value)
        if normalised is None:
            raise self.fail("doi", f"is not a DOI (10.<registrant>/<suffix>): {_shown(value)}")
        if len(normalised) > MAX_DOI_CHARS:
            raise self.fail(
                "doi", f"is {len(normalised):,} characters long (at most {MAX_DOI_CHARS})"
            )
        return normalised


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can.

    NUL and other C0/C1 control characters (bar tab, newline, carriage return) and lone
    surrogates are refused, naming the first one and its position.
    """
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char, position = found[0], found.start() + 1
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "the control character"
    return f"holds {what} U+{ord(char):04X} at character {position}"


def is_web_url(value: str) -> bool:
    """True for an absolute ``http`` or ``https`` URL with a host and no spaces."""
    if len(value) > MAX_URL_CHARS or any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:77]!r}... ({len(value):,} characters)"


def _describe(value: object) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {', '.join(kinds)}"
    return type(value).__name__


def vet_paper(paper: Paper) -> Paper:
    """The same checks for a paper a feed, OAI-PMH or bioRxiv parser built itself.

    Those parsers read structured answers with libraries of their own, so their papers do
    not pass through :func:`paper_from_record`; the harvest runs every one through here
    before storing it. Text must be storable (:func:`text_problem`) and fit its column,
    dates must be in range, and a link that is not ``http(s)`` is dropped (the paper is
    kept), as for files.

    Raises
    ------
    ValueError
        Naming the first bad field: the harvest skips and reports that record.
    """
    texts = {
        "title": (paper.title, MAX_TITLE_CHARS),
        "abstract": (paper.abstract, MAX_ABSTRACT_CHARS),
        "id": (paper.external_id, MAX_ID_CHARS),
        "arxiv_id": (paper.arxiv_id, MAX_ARXIV_ID_CHARS),
        "doi": (paper.doi, MAX_DOI_CHARS),
        "journal_ref": (paper.journal_ref, MAX_NAME_CHARS),
        "comments": (paper.comments, MAX_ABSTRACT_CHARS),
        **{f"authors[{i}]": (a, MAX_NAME_CHARS) for i, a in enumerate(paper.authors)},
        **{f"categories[{i}]": (c, MAX_NAME_CHARS) for i, c in enumerate(paper.categories)},
    }
    if len(paper.authors) > MAX_LIST_ITEMS or len(paper.categories) > MAX_LIST_ITEMS:
        raise ValueError(f"field 'authors' or 'categories' has over {MAX_LIST_ITEMS:,} items")
    for name, (value, limit) in texts.items():
        if value is None:
            continue
        problem = text_problem(value)
        if problem is None and len(value) > limit:
            problem = f"is {len(value):,} characters long (at most {limit:,})"
        if problem is not None:
            raise ValueError(f"field {name!r} {problem}")
    for name, stamp in (("published", paper.published), ("updated", paper.updated)):
        if stamp is not None and not MIN_YEAR <= stamp.year <= MAX_YEAR:
            raise ValueError(f"field {name!r} year {stamp.year} is outside {MIN_YEAR}..{MAX_YEAR}")
    url = paper.url if paper.url and is_web_url(paper.url) else None
    pdf_url = paper.pdf_url if paper.pdf_url and is_web_url(paper.pdf_url) else None
    if (url, pdf_url) == (paper.url, paper.pdf_url):
        return paper
    return replace(paper, url=url, pdf_url=pdf_url)
