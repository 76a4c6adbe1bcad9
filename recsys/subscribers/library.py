"""Read a subscriber's library (a BibTeX file or a Zotero CSL-JSON export) into interests.

Pure parsing: text in, a :class:`Library` out. Each reference becomes a seed paper (found in
the catalogue later by arXiv id, DOI or title fingerprint); the most frequent keywords and
authors across the library become keyword and author interests.

Real exports are untidy, so the import forgives: every entry that parses is imported and
each one that does not is listed in :attr:`Library.skipped` with its line (BibTeX) or item
(CSL-JSON) and the reason. A title-less ``@set``, a title inherited through ``crossref`` or
a ``*`` in a citation key no longer refuse a whole library. :class:`LibraryError` is left
for a library with nothing importable, or one that is not BibTeX or JSON at all.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi
from recsys.catalog.sources.record import MAX_TITLE_CHARS, text_problem

# A library is a summary of taste: its most frequent keywords and authors say enough, and
# capping them keeps a 2,000-entry export from drowning the interests a user typed.
MAX_KEYWORDS = 20
MAX_AUTHORS = 10
MAX_LIBRARY_CHARS = 2_000_000
# Longer "keywords" or "names" are pasted prose, not something to follow.
MAX_NAME_CHARS = 200

_ARXIV_IN_TEXT = re.compile(
    r"arxiv(?:\.org/(?:abs|pdf)/|[.:/\s]+(?:preprint\s+arxiv:)?\s*)"
    r"(\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[a-z]{2})?/\d{7}(?:v\d+)?)",
    re.IGNORECASE,
)
_DOI_IN_TEXT = re.compile(r"\b10\.\d{4,9}/[^\s\"<>{}]+")
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)


class LibraryError(ValueError):
    """A library file we cannot read; ``where`` names the line or the item and field."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class SeedPaper:
    """A paper a subscriber named, to be found in the catalogue by the strongest key given."""

    title: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None

    @property
    def label(self) -> str:
        """How to name this seed back to its owner."""
        if self.title:
            return self.title
        return f"arXiv:{self.arxiv_id}" if self.arxiv_id else f"doi:{self.doi}"


@dataclass(frozen=True)
class Reference:
    """One entry of a library."""

    seed: SeedPaper
    authors: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """An entry left out of an import: where it is (``line 26``, ``item 3``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class Library:
    """A parsed library: its references, what they add up to, and the entries left out."""

    references: tuple[Reference, ...]
    keywords: tuple[str, ...] = field(default=())
    authors: tuple[str, ...] = field(default=())
    skipped: tuple[Skipped, ...] = field(default=())

    @property
    def seeds(self) -> tuple[SeedPaper, ...]:
        return tuple(r.seed for r in self.references)


def parse_library(text: str) -> Library:
    """Parse a BibTeX or CSL-JSON export, telling the two apart by their first character.

    Returns
    -------
    Library
        Every entry that parses; the others in ``skipped``, with line or item and reason.

    Raises
    ------
    LibraryError
        If the text is empty, too large, not valid JSON, or has no importable entry (then
        naming the first one skipped and why).
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise LibraryError("library", "is empty; paste a BibTeX file or a CSL-JSON export")
    if len(text) > MAX_LIBRARY_CHARS:
        raise LibraryError("library", f"is over {MAX_LIBRARY_CHARS:,} characters; split it")
    return parse_csl_json(text) if stripped[0] in "[{" else parse_bibtex(text)


def summarise(references: Iterable[Reference], skipped: Iterable[Skipped] = ()) -> Library:
    """A library of ``references`` with its most frequent keywords and authors.

    Raises
    ------
    LibraryError
        When entries were skipped and none is left: an import of nothing is an error,
        named after the first entry skipped.
    """
    refs, left_out = tuple(references), tuple(skipped)
    if not refs and left_out:
        first = left_out[0]
        more = f" ({len(left_out) - 1} more entries skipped)" if len(left_out) > 1 else ""
        raise LibraryError(first.where, f"{first.reason}{more}; nothing to import")
    return Library(
        references=refs,
        keywords=_most_common((k for r in refs for k in r.keywords), MAX_KEYWORDS),
        authors=_most_common((a for r in refs for a in r.authors), MAX_AUTHORS),
        skipped=left_out,
    )


def _most_common(values: Iterable[str], limit: int) -> tuple[str, ...]:
    # Counted case-insensitively; the first spelling seen is the one kept.
    counts: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    for value in values:
        key = value.casefold()
        spelling.setdefault(key, value)
        counts[key] += 1
    return tuple(spelling[key] for key, _ in counts.most_common(limit))


def parse_seed(line: str) -> SeedPaper:
    """One line a subscriber typed: an arXiv id or URL, a DOI, or else a title.

    Examples
    --------
    >>> parse_seed("arXiv:1706.03762v5")
    SeedPaper(title=None, arxiv_id='1706.03762', doi=None)
    >>> parse_seed("Attention Is All You Need").title
    'Attention Is All You Need'
    """
    text = " ".join(line.split())
    arxiv_id = normalise_arxiv_id(text)
    if arxiv_id:
        return SeedPaper(arxiv_id=arxiv_id)
    doi = normalise_doi(text)
    if doi:
        return _doi_seed(doi)
    return SeedPaper(title=text)


def _doi_seed(doi: str, title: str | None = None) -> SeedPaper:
    # arXiv mints DOIs for its papers (10.48550/arXiv.<id>): the id is the stronger key.
    arxiv = _ARXIV_DOI.match(doi)
    if arxiv and normalise_arxiv_id(arxiv[1]):
        return SeedPaper(title=title, arxiv_id=normalise_arxiv_id(arxiv[1]))
    return SeedPaper(title=title, doi=doi)


def _reference(
    title: str | None, ids: Iterable[str], authors: Iterable[str], keywords: Iterable[str]
) -> Reference:
    """A reference from cleaned fields; ``ids`` are texts that may hold an arXiv id or DOI.

    Raises
    ------
    ValueError
        For a title that cannot be stored as an interest (control characters, lone
        surrogates, over ``MAX_TITLE_CHARS``); the caller skips the entry with this reason.
    """
    if title:
        _check_title(title)
    arxiv_id, doi = _find_ids(list(ids))
    if doi and _ARXIV_DOI.match(doi):  # arXiv's own DOI says no more than the id
        arxiv_id, doi = arxiv_id or _doi_seed(doi).arxiv_id, None
    return Reference(
        seed=SeedPaper(title, arxiv_id, doi),
        authors=_usable(authors),
        keywords=_usable(keywords),
    )


def _check_title(title: str) -> None:
    problem = text_problem(title)
    if problem:
        raise ValueError(f"its title {problem}")
    if len(title) > MAX_TITLE_CHARS:
        raise ValueError(
            f"its title is {len(title):,} characters long (at most {MAX_TITLE_CHARS:,})"
        )


def _usable(names: Iterable[str]) -> tuple[str, ...]:
    # A bad keyword or name is not worth losing the paper over: it is simply not followed.
    return tuple(n for n in names if n and len(n) <= MAX_NAME_CHARS and not text_problem(n))


def _find_ids(texts: list[str]) -> tuple[str | None, str | None]:
    arxiv_id = doi = None
    for text in texts:
        arxiv_id = arxiv_id or normalise_arxiv_id(text.strip())
        # A whole field that is a DOI is taken whole: SICI DOIs hold "<" and ">", where
        # the search in running text below would cut them short.
        doi = doi or normalise_doi(text.strip())
        found = _ARXIV_IN_TEXT.search(text)
        if arxiv_id is None and found:
            arxiv_id = normalise_arxiv_id(found[1])
        doi_found = _DOI_IN_TEXT.search(text)
        if doi is None and doi_found:
            doi = normalise_doi(doi_found[0].rstrip(".,;"))
    return arxiv_id, doi


def split_keywords(value: str) -> list[str]:
    """Zotero and BibTeX separate keywords with commas or semicolons."""
    return [k.strip() for k in re.split(r"[,;]", value) if k.strip()]


# CSL-JSON ----------------------------------------------------------------------------------


def parse_csl_json(text: str) -> Library:
    """Parse a CSL-JSON export (a list of items, or one item), forgiving bad items.

    Titles lose CSL's rich-text markup (``<i>``, ``<b>``, ``<sub>``, ``<sup>``, ``<sc>``,
    ``<span class="nocase">``) so they match the catalogue's titles.

    Returns
    -------
    Library
        Items of the wrong shape are in ``skipped`` as ``item N`` (``item N, field F``).

    Raises
    ------
    LibraryError
        ``line N`` for JSON syntax errors, ``CSL-JSON`` for JSON nested too deeply or a
        number too long to read; as :func:`summarise` when no item is importable.
    """
    items = _load_json(text)
    references: list[Reference] = []
    skipped: list[Skipped] = []
    for n, item in enumerate(items if isinstance(items, list) else [items], start=1):
        try:
            references.append(_csl_item(item, n))
        except LibraryError as exc:
            skipped.append(Skipped(exc.where, exc.reason))
        except ValueError as exc:
            skipped.append(Skipped(f"item {n}", str(exc)))
    return summarise(references, skipped)


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None
    except RecursionError:  # the C decoder gives up near Python's recursion limit
        raise LibraryError("CSL-JSON", "nests lists or objects too deeply") from None
    except ValueError:  # int() refuses to read more than 4,300 digits
        raise LibraryError(
            "CSL-JSON", "holds a number too long to be part of a reference"
        ) from None


def _csl_item(item: Any, n: int) -> Reference:
    if not isinstance(item, dict):
        raise LibraryError(f"item {n}", "expected a JSON object with a title")
    title = strip_csl_markup(_csl_text(item, n, "title") or "") or None
    ids = [_csl_text(item, n, name) or "" for name in ("DOI", "URL", "number", "note")]
    if not title and not any(ids):
        raise LibraryError(f"item {n}", "has no title, DOI or arXiv URL to find the paper by")
    authors = [_csl_name(person, n, i) for i, person in enumerate(_csl_list(item, n, "author"))]
    keywords = split_keywords(_csl_text(item, n, "keyword") or "")
    return _reference(title, ids, authors, keywords)


# CSL's rich text: https://citeproc-js.readthedocs.io/en/latest/csl-json/markup.html
_CSL_MARKUP = re.compile(r"</?(?:i|b|sub|sup|sc|span)(?:\s[^<>]*)?>", re.IGNORECASE)


def strip_csl_markup(title: str) -> str:
    """``title`` without CSL rich-text tags, whitespace collapsed.

    Examples
    --------
    >>> strip_csl_markup('Water (H<sub>2</sub>O) in <span class="nocase"><i>E. coli</i></span>')
    'Water (H2O) in E. coli'
    """
    return " ".join(_CSL_MARKUP.sub("", title).split())


def _csl_text(item: dict[str, Any], n: int, name: str) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # json.loads already refused integers too long to print
    if not isinstance(value, str):
        raise LibraryError(f"item {n}, field {name!r}", "expected a string")
    return " ".join(value.split()) or None


def _csl_list(item: dict[str, Any], n: int, name: str) -> list[Any]:
    value = item.get(name, [])
    if not isinstance(value, list):
        raise LibraryError(f"item {n}, field {name!r}", "expected a list of names")
    return value


def _csl_name(person: Any, n: int, i: int) -> str:
    where = f"item {n}, field 'author[{i}]'"
    if not isinstance(person, dict):
        raise LibraryError(where, "expected an object with 'family' and 'given' or 'literal'")
    parts = [person.get(k) for k in ("given", "non-dropping-particle", "family", "literal")]
    if any(p is not None and not isinstance(p, str) for p in parts):
        raise LibraryError(where, "name parts must be strings")
    return " ".join(p.strip() for p in parts if p and p.strip())


# BibTeX ------------------------------------------------------------------------------------

_MONTHS = {m: m for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct")}
_MONTHS |= {"nov": "nov", "dec": "dec"}
_ACCENTS = {
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
    "=": "\u0304", ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b",
}  # fmt: skip
_ACCENT = re.compile(r"\\([\"'`^~=.])\s*\{?\s*([A-Za-z])\s*\}?|\\([cvuH])\s*\{\s*([A-Za-z])\s*\}")
_ESCAPED = re.compile(r"\\([&%$#_{}])")
_COMMAND = re.compile(r"\\[A-Za-z]+\*?\s*")


@dataclass
class _Cursor:
    """A position in BibTeX text that knows its line number."""

    text: str
    pos: int = 0
    _newlines: list[int] | None = None

    def line_at(self, pos: int) -> int:
        # Binary search over the newline offsets: a library with thousands of skipped
        # entries must not rescan the text for each one.
        if self._newlines is None:
            self._newlines = [i for i, ch in enumerate(self.text) if ch == "\n"]
        return bisect.bisect_left(self._newlines, pos) + 1

    def error(self, reason: str, pos: int | None = None) -> LibraryError:
        return LibraryError(f"line {self.line_at(self.pos if pos is None else pos)}", reason)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] in "_-:./+'"
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def key(self, close: str) -> str:
        """A citation key: anything up to a comma, space, brace or ``close``.

        BibTeX itself allows ``*``, ``/`` and more in keys (``IJCAI01*425``).
        """
        start = self.pos
        while (
            self.pos < len(self.text)
            and self.text[self.pos] not in f",{{}}{close}"
            and not (self.text[self.pos].isspace())
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def expect(self, chars: str, what: str) -> str:
        self.skip_space()
        found = self.peek()
        if not found or found not in chars:
            shown = repr(found) if found else "the end of the file"
            raise self.error(f"expected {what}, found {shown}")
        self.pos += 1
        return found


@dataclass(frozen=True)
class _Entry:
    kind: str
    key: str
    fields: dict[str, str]
    line: int


# Where parsing picks up again after a broken entry: the next "@" that starts a line.
_NEXT_ENTRY = re.compile(r"^[ \t]*@", re.MULTILINE)
# biblatex entry types that hold no paper of their own.
_NOT_PAPERS = {
    "set": "a @set only groups other entries (entryset = {{{entryset}}}); they are imported "
    "on their own",
    "xdata": "an @xdata entry only holds fields for other entries",
}


def parse_bibtex(text: str) -> Library:
    """Parse BibTeX entries; text outside entries is a comment, as in BibTeX itself.

    An entry that is broken (never closed, a bad value) or holds no paper (``@set``, no
    title or id) is skipped and reported with its line; parsing resumes at the next line
    that starts with ``@``. A child's missing title and authors come from the entry its
    ``crossref`` names.

    Raises
    ------
    LibraryError
        As :func:`summarise` when no entry is importable.
    """
    cursor = _Cursor(text)
    entries, skipped = _read_entries(cursor)
    by_key = {entry.key.casefold(): entry for entry in entries}
    references = []
    for entry in entries:
        try:
            references.append(_bib_reference(_inherit(entry, by_key)))
        except ValueError as exc:
            skipped.append(Skipped(f"line {entry.line}", f"@{entry.kind}{{{entry.key}}}: {exc}"))
    skipped.sort(key=lambda s: int(s.where.split()[-1]) if s.where.startswith("line ") else 0)
    return summarise(references, skipped)


def _read_entries(cursor: _Cursor) -> tuple[list[_Entry], list[Skipped]]:
    strings: dict[str, str] = dict(_MONTHS)
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for kind, start in _entries(cursor):
        try:
            if kind in ("comment", "preamble"):
                _skip_group(cursor, start)
            elif kind == "string":
                name, value = _string_definition(cursor, strings)
                strings[name] = value
            else:
                key, fields = _entry_fields(cursor, strings, start)
                entries.append(_Entry(kind, key, fields, cursor.line_at(start)))
        except LibraryError as exc:
            skipped.append(_broken(cursor, start, exc))
            found = _NEXT_ENTRY.search(cursor.text, max(cursor.pos, start + 1))
            cursor.pos = found.start() if found else len(cursor.text)
    return entries, skipped


def _broken(cursor: _Cursor, start: int, exc: LibraryError) -> Skipped:
    """The entry starting at ``start`` is skipped: where it broke, and where it starts."""
    entry_line = f"line {cursor.line_at(start)}"
    which = "this entry" if exc.where == entry_line else f"the entry from {entry_line}"
    return Skipped(exc.where, f"{exc.reason}; {which} is skipped")


def _entries(cursor: _Cursor) -> Iterator[tuple[str, int]]:
    """Yield each entry's type (lower case), leaving the cursor just after its type."""
    while True:
        at = cursor.text.find("@", cursor.pos)
        if at < 0:
            return
        cursor.pos = at + 1
        yield cursor.word().lower(), at


def _skip_group(cursor: _Cursor, start: int) -> None:
    close = {"{": "}", "(": ")"}[cursor.expect("{(", "'{' after the entry type")]
    depth = 1
    while depth:
        if cursor.pos >= len(cursor.text):
            raise cursor.error(f"this entry is never closed; add the missing {close!r}", start)
        ch = cursor.text[cursor.pos]
        depth += {"{": 1, "}": -1}.get(ch, 0) if close == "}" else {"(": 1, ")": -1}.get(ch, 0)
        cursor.pos += 1


def _string_definition(cursor: _Cursor, strings: dict[str, str]) -> tuple[str, str]:
    close = {"{": "}", "(": ")"}[cursor.expect("{(", "'{' after @string")]
    cursor.skip_space()
    name = cursor.word().lower()
    if not name:
        raise cursor.error("expected a name in @string{name = value}")
    cursor.expect("=", "'=' in @string{name = value}")
    value = _value(cursor, strings)
    cursor.expect(close, f"{close!r} closing @string")
    return name, value


def _entry_fields(
    cursor: _Cursor, strings: dict[str, str], start: int
) -> tuple[str, dict[str, str]]:
    if cursor.pos == start + 1:
        raise cursor.error("expected an entry type after '@', e.g. @article{key, ...}", start)
    close = {"{": "}", "(": ")"}[cursor.expect("{(", "'{' after the entry type")]
    cursor.skip_space()
    key = cursor.key(close)
    fields: dict[str, str] = {}
    while True:
        cursor.skip_space()
        if cursor.peek() == close:
            cursor.pos += 1
            return key, fields
        if cursor.peek() in ("@", ""):
            line = cursor.line_at(start)
            raise cursor.error(f"the entry from line {line} is never closed; add {close!r}")
        cursor.expect(",", f"',' between fields or {close!r} closing the entry")
        cursor.skip_space()
        if cursor.peek() == close:  # a trailing comma before the closing brace
            continue
        name = cursor.word().lower()
        if not name:
            reason = f"expected a field name or {close!r}; is the entry above closed?"
            raise cursor.error(reason if cursor.peek() else f"entry never closed ({reason})")
        cursor.expect("=", f"'=' after field {name!r}")
        fields[name] = _value(cursor, strings)


def _value(cursor: _Cursor, strings: dict[str, str]) -> str:
    """A field value: ``{...}``, ``"..."``, a number or a @string name, joined by ``#``."""
    parts = [_value_part(cursor, strings)]
    cursor.skip_space()
    while cursor.peek() == "#":
        cursor.pos += 1
        parts.append(_value_part(cursor, strings))
        cursor.skip_space()
    return "".join(parts)


def _value_part(cursor: _Cursor, strings: dict[str, str]) -> str:
    cursor.skip_space()
    start, first = cursor.pos, cursor.peek()
    if first == "{":
        return _braced(cursor, start)
    if first == '"':
        return _quoted(cursor, start)
    word = cursor.word()
    if not word:
        raise cursor.error('expected a value: {text}, "text", a number or a @string name')
    if word.isdigit():
        return word
    if word.lower() not in strings:
        raise cursor.error(f"unknown @string {word!r}; put the value in braces", start)
    return strings[word.lower()]


def _braced(cursor: _Cursor, start: int) -> str:
    depth = 0
    for pos in range(cursor.pos, len(cursor.text)):
        depth += {"{": 1, "}": -1}.get(cursor.text[pos], 0)
        if depth == 0:
            cursor.pos = pos + 1
            return cursor.text[start + 1 : pos]
    raise cursor.error("this value's '{' is never closed", start)


def _quoted(cursor: _Cursor, start: int) -> str:
    depth = 0
    for pos in range(cursor.pos + 1, len(cursor.text)):
        ch = cursor.text[pos]
        if ch == '"' and depth == 0:
            cursor.pos = pos + 1
            return cursor.text[start + 1 : pos]
        depth += {"{": 1, "}": -1}.get(ch, 0)
    raise cursor.error("this value's '\"' is never closed", start)


# A child takes from its crossref parent only what names the work, never the parent's ids:
# a chapter must not be found in the catalogue as its book.
_INHERITED = ("title", "author", "keywords")


def _inherit(entry: _Entry, by_key: dict[str, _Entry]) -> _Entry:
    parent = by_key.get(entry.fields.get("crossref", "").strip().casefold())
    if parent is None or parent is entry:
        return entry
    missing = {
        k: parent.fields[k] for k in _INHERITED if k in parent.fields and k not in entry.fields
    }
    return _Entry(entry.kind, entry.key, {**entry.fields, **missing}, entry.line)


def _bib_reference(entry: _Entry) -> Reference:
    """The entry's reference; ValueError saying why when it holds no findable paper."""
    fields = entry.fields
    if entry.kind in _NOT_PAPERS:
        raise ValueError(_NOT_PAPERS[entry.kind].format(entryset=fields.get("entryset", "")))
    title = latex_to_text(fields.get("title", "")) or None
    ids = [fields.get(k, "") for k in ("eprint", "arxiv", "arxivid", "doi", "url", "journal")]
    ids += [fields.get("note", ""), fields.get("howpublished", "")]
    if not title and not any(ids):
        raise ValueError("no title, DOI or arXiv id to find the paper by")
    authors = [_bib_name(latex_to_text(a)) for a in split_names(fields.get("author", ""))]
    keywords = split_keywords(latex_to_text(fields.get("keywords", "")))
    return _reference(title, ids, [a for a in authors if a.lower() != "others"], keywords)


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def split_names(value: str) -> list[str]:
    r"""Split a BibTeX name list on ``and`` in any case, outside braces.

    Examples
    --------
    >>> split_names("Ada Lovelace AND {Barnes and Noble} and Turing, Alan")
    ['Ada Lovelace', '{Barnes and Noble}', 'Turing, Alan']
    """
    depth, depths = 0, []
    for ch in value:
        depths.append(depth)
        depth += {"{": 1, "}": -1}.get(ch, 0)
    names, begin = [], 0
    for found in _AND.finditer(value):
        if depths[found.start()] == 0:
            names.append(value[begin : found.start()])
            begin = found.end()
    names.append(value[begin:])
    return [name.strip() for name in names if name.strip()]


def _bib_name(name: str) -> str:
    """``"Vaswani, Ashish"`` -> ``"Ashish Vaswani"``; other forms are kept as written."""
    last, comma, first = name.partition(",")
    return f"{first.strip()} {last.strip()}".strip() if comma else name.strip()


def _latex_context() -> Any:
    db = get_default_latex_context_db()
    # biblatex's \slash and \hyphen are not in pylatexenc's table; without them
    # "AND\slash OR" became "ANDOR".
    db.add_context_category(
        "paperboy", prepend=True, macros=[MacroTextSpec("slash", "/"), MacroTextSpec("hyphen", "-")]
    )
    return db


_LATEX = LatexNodes2Text(latex_context=_latex_context(), math_mode="text", strict_latex_spaces=True)


def latex_to_text(value: str) -> str:
    r"""Plain Unicode text from a BibTeX value: accents and commands converted, braces dropped.

       pylatexenc knows the accents and symbols BibTeX exports use (``R{\o}nnow`` is
       "Rønnow", ``{ R}eh{
    u}{ r}ek`` "Řehůřek"); text it cannot parse falls back to a
       small built-in converter rather than failing the entry.

       Examples
       --------
       >>> latex_to_text(r"{G}{"o}del's {\emph{Incompleteness}} \& R{\o}nnow")
       "Gödel's Incompleteness & Rønnow"
    """
    try:
        text = _LATEX.latex_to_text(value)
    except (RecursionError, ValueError, IndexError):
        text = _plain_latex_to_text(value)
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _plain_latex_to_text(value: str) -> str:
    text = _ACCENT.sub(_compose_accent, value)
    text = _ESCAPED.sub(r"\1", text)
    text = _COMMAND.sub("", text)
    return text.replace("{", "").replace("}", "").replace("~", " ")


def _compose_accent(match: re.Match[str]) -> str:
    accent, letter = (match[1], match[2]) if match[1] else (match[3], match[4])
    return letter + _ACCENTS[accent]
