"""Read a subscriber's library (a BibTeX file or a Zotero CSL-JSON export) into interests.

Pure parsing: text in, a :class:`Library` out. Each reference becomes a seed paper (found in
the catalogue later by arXiv id, DOI or title); the most frequent keywords and authors
across the library become keyword and author interests. Bad input raises
:class:`LibraryError` naming the line (BibTeX, JSON syntax) or the item and field (CSL-JSON).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi

# A library is a summary of taste: its most frequent keywords and authors say enough, and
# capping them keeps a 2,000-entry export from drowning the interests a user typed.
MAX_KEYWORDS = 20
MAX_AUTHORS = 10
MAX_LIBRARY_CHARS = 2_000_000

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
class Library:
    """A parsed library: its references and what they add up to."""

    references: tuple[Reference, ...]
    keywords: tuple[str, ...] = field(default=())
    authors: tuple[str, ...] = field(default=())

    @property
    def seeds(self) -> tuple[SeedPaper, ...]:
        return tuple(r.seed for r in self.references)


def parse_library(text: str) -> Library:
    """Parse a BibTeX or CSL-JSON export, telling the two apart by their first character.

    Raises
    ------
    LibraryError
        If the text is empty, too large, or malformed; the message names where.
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise LibraryError("library", "is empty; paste a BibTeX file or a CSL-JSON export")
    if len(text) > MAX_LIBRARY_CHARS:
        raise LibraryError("library", f"is over {MAX_LIBRARY_CHARS:,} characters; split it")
    references = parse_csl_json(text) if stripped[0] in "[{" else parse_bibtex(text)
    return summarise(references)


def summarise(references: Iterable[Reference]) -> Library:
    """A library of ``references`` with its most frequent keywords and authors."""
    refs = tuple(references)
    return Library(
        references=refs,
        keywords=_most_common((k for r in refs for k in r.keywords), MAX_KEYWORDS),
        authors=_most_common((a for r in refs for a in r.authors), MAX_AUTHORS),
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
    """A reference from cleaned fields; ``ids`` are texts that may hold an arXiv id or DOI."""
    arxiv_id, doi = _find_ids(list(ids))
    if doi and _ARXIV_DOI.match(doi):  # arXiv's own DOI says no more than the id
        arxiv_id, doi = arxiv_id or _doi_seed(doi).arxiv_id, None
    return Reference(
        seed=SeedPaper(title, arxiv_id, doi),
        authors=tuple(a for a in authors if a),
        keywords=tuple(k for k in keywords if k),
    )


def _find_ids(texts: list[str]) -> tuple[str | None, str | None]:
    arxiv_id = doi = None
    for text in texts:
        arxiv_id = arxiv_id or normalise_arxiv_id(text.strip())
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


def parse_csl_json(text: str) -> list[Reference]:
    """Parse a CSL-JSON export (a list of items, or one item).

    Raises
    ------
    LibraryError
        ``line N`` for JSON syntax errors, ``item N, field F`` for items of the wrong shape.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None
    except RecursionError:  # the C decoder gives up near Python's recursion limit
        raise LibraryError("CSL-JSON", "nests lists or objects too deeply") from None
    except ValueError:  # int() refuses to read more than 4,300 digits
        raise LibraryError(
            "CSL-JSON", "holds a number too long to be part of a reference"
        ) from None
    items = data if isinstance(data, list) else [data]
    return [_csl_item(item, n) for n, item in enumerate(items, start=1)]


def _csl_item(item: Any, n: int) -> Reference:
    if not isinstance(item, dict):
        raise LibraryError(f"item {n}", "expected a JSON object with a title")
    title = _csl_text(item, n, "title")
    ids = [_csl_text(item, n, name) or "" for name in ("DOI", "URL", "number", "note")]
    if not title and not any(ids):
        raise LibraryError(f"item {n}", "has no title, DOI or arXiv URL to find the paper by")
    authors = [_csl_name(person, n, i) for i, person in enumerate(_csl_list(item, n, "author"))]
    keywords = split_keywords(_csl_text(item, n, "keyword") or "")
    return _reference(title, ids, authors, keywords)


def _csl_text(item: dict[str, Any], n: int, name: str) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
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

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def error(self, reason: str, pos: int | None = None) -> LibraryError:
        where = self.pos if pos is None else pos
        return LibraryError(f"line {self.text.count(chr(10), 0, where) + 1}", reason)

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

    def expect(self, chars: str, what: str) -> str:
        self.skip_space()
        found = self.peek()
        if not found or found not in chars:
            shown = repr(found) if found else "the end of the file"
            raise self.error(f"expected {what}, found {shown}")
        self.pos += 1
        return found


def parse_bibtex(text: str) -> list[Reference]:
    """Parse BibTeX entries; text outside entries is a comment, as in BibTeX itself.

    Raises
    ------
    LibraryError
        ``line N`` with what was expected there, e.g. an entry that is never closed.
    """
    cursor = _Cursor(text)
    strings: dict[str, str] = dict(_MONTHS)
    references = []
    for kind, start in _entries(cursor):
        if kind in ("comment", "preamble"):
            _skip_group(cursor, start)
        elif kind == "string":
            name, value = _string_definition(cursor, strings)
            strings[name] = value
        else:
            references.append(_bib_reference(_entry_fields(cursor, strings, start), cursor, start))
    return references


def _entries(cursor: _Cursor) -> Iterator[tuple[str, int]]:
    """Yield each entry's type (lower case), leaving the cursor just after its type."""
    while True:
        at = cursor.text.find("@", cursor.pos)
        if at < 0:
            return
        cursor.pos = at + 1
        kind = cursor.word().lower()
        if not kind:
            raise cursor.error("expected an entry type after '@', e.g. @article{key, ...}", at)
        yield kind, at


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


def _entry_fields(cursor: _Cursor, strings: dict[str, str], start: int) -> dict[str, str]:
    close = {"{": "}", "(": ")"}[cursor.expect("{(", "'{' after the entry type")]
    cursor.skip_space()
    cursor.word()  # the citation key: not needed to find the paper
    fields: dict[str, str] = {}
    while True:
        cursor.skip_space()
        if cursor.peek() == close:
            cursor.pos += 1
            return fields
        if cursor.peek() in ("@", ""):
            line = cursor.text.count("\n", 0, start) + 1
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


def _bib_reference(fields: dict[str, str], cursor: _Cursor, start: int) -> Reference:
    title = latex_to_text(fields.get("title", "")) or None
    ids = [fields.get(k, "") for k in ("eprint", "arxiv", "arxivid", "doi", "url", "journal")]
    ids += [fields.get("note", ""), fields.get("howpublished", "")]
    if not title and not any(ids):
        raise cursor.error("entry has no title, DOI or arXiv id to find the paper by", start)
    authors = [
        _bib_name(latex_to_text(a)) for a in re.split(r"\s+and\s+", fields.get("author", ""))
    ]
    keywords = split_keywords(latex_to_text(fields.get("keywords", "")))
    return _reference(title, ids, [a for a in authors if a.lower() != "others"], keywords)


def _bib_name(name: str) -> str:
    """``"Vaswani, Ashish"`` -> ``"Ashish Vaswani"``; other forms are kept as written."""
    last, comma, first = name.partition(",")
    return f"{first.strip()} {last.strip()}".strip() if comma else name.strip()


def latex_to_text(value: str) -> str:
    r"""Plain text from a BibTeX value: accents composed, commands and braces dropped.

    Examples
    --------
    >>> latex_to_text(r"{G}{\"o}del's {\emph{Incompleteness}} \& more")
    "Gödel's Incompleteness & more"
    """
    text = _ACCENT.sub(_compose_accent, value)
    text = _ESCAPED.sub(r"\1", text)
    text = _COMMAND.sub("", text)
    text = text.replace("{", "").replace("}", "").replace("~", " ")
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _compose_accent(match: re.Match[str]) -> str:
    accent, letter = (match[1], match[2]) if match[1] else (match[3], match[4])
    return letter + _ACCENTS[accent]
