"""Text dumps of papers listing pages ("Get trending papers in your email inbox ...").

Operators paste or scrape these pages; a dump is page chrome (``new``, ``Subscribe``,
``byAK and the research community``, a date such as ``Mar 12``) around records, each a
title line followed by an abstract paragraph, usually with blank lines between. Some dumps
lose their blank lines and glue chrome to the next line (``SubscribeDeep Human Parsing``).

How titles are told from abstracts
----------------------------------
After blank lines and chrome are removed, what is left must alternate strictly: title,
abstract, title, abstract. Position in that alternation decides the role; no line is
judged a title by its look alone, because a cut-short abstract can be as short as a title
and a title can be long. The look is only a sanity check that catches a broken
alternation: a line in a title position that reads like prose (longer than
``MAX_TITLE_CHARS``, or ending in a full stop as sentences do and titles practically never
do) means a record above lost its abstract or gained a paragraph, and the dump is refused
at that line rather than mis-paired from there to the end. A last title with no abstract
is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from recsys.catalog.keys import read_lines
from recsys.catalog.sources.record import Warn, paper_from_fields
from recsys.domain import IngestError, Paper

# Whole lines of page chrome. Matched exactly, after whitespace is collapsed.
CHROME_LINES = frozenset(
    {
        "new",
        "Subscribe",
        "Get trending papers in your email inbox!",
        "Get trending papers in your email inbox once a day!",
        "byAK and the research community",
    }
)
# Chrome that may be glued to the start of the following line when a dump loses its
# line breaks. Short words such as "new" are left out: "new" glued to a title cannot be
# told from a title that starts with "new".
_GLUED_CHROME = (
    "Get trending papers in your email inbox once a day!",
    "Get trending papers in your email inbox!",
    "byAK and the research community",
    "Subscribe",
)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DATE_LINE = re.compile(rf"{_MONTH} \d{{1,2}}(?:, \d{{4}})?")

# The longest title in the seed dumps has 170 characters, the shortest abstract over 500.
MAX_TITLE_CHARS = 300

_Line = tuple[int, str]


def parse_seed_dump(path: Path, *, warn: Warn | None = None) -> list[Paper]:
    """Parse one papers-page text dump.

    Every record is returned, in file order, duplicates included: folding duplicates is
    :func:`recsys.catalog.keys.dedupe`'s job, which also counts them.

    Parameters
    ----------
    path : Path
        A UTF-8 text dump, read line by line within :func:`recsys.catalog.keys.read_lines`' caps.
    warn : callable, optional
        Accepted for a uniform parser signature; a dump has no field that is dropped.

    Returns
    -------
    list of Paper
        Title and abstract set; ``source`` is ``str(path)``, ``line`` the title's 1-based
        line. No URL or id: the page dump has none.

    Raises
    ------
    IngestError
        At the offending line when a title has no abstract, the title/abstract
        alternation breaks or a text is bad (as in JSON Lines: control characters,
        lengths); at line 0 when the file is missing; at the line that is not UTF-8.
    """
    source = str(path)
    return _pair_records(_content_lines(read_lines(path)), source)


def _content_lines(lines: Iterable[tuple[int, str]]) -> list[_Line]:
    """Non-blank lines with chrome removed, as (1-based line number, text)."""
    found: list[_Line] = []
    # read_lines splits on "\n" only: str.splitlines() also breaks on form feeds and
    # Unicode line separators, which would make our line numbers disagree with an editor's.
    for number, raw in lines:
        line = _strip_chrome(" ".join(raw.split()))
        if line:
            found.append((number, line))
    return found


def _strip_chrome(line: str) -> str:
    """``line`` without glued chrome at its start; empty if it is all chrome."""
    while (peeled := _peel_glued_chrome(line)) != line:
        line = peeled
    if line in CHROME_LINES or _DATE_LINE.fullmatch(line):
        return ""
    return line


def _peel_glued_chrome(line: str) -> str:
    # Only peel when the rest starts like a title (capital or digit): "Subscribers of
    # ..." is a title, "SubscribeDeep Human Parsing" is chrome plus a title.
    for phrase in _GLUED_CHROME:
        rest = line[len(phrase) :]
        if line.startswith(phrase) and rest and (rest[0].isupper() or rest[0].isdigit()):
            return rest.lstrip()
    return line


def _pair_records(lines: list[_Line], source: str) -> list[Paper]:
    papers: list[Paper] = []
    for index in range(0, len(lines), 2):
        _check_title_position(lines, index, source)
        title_line, title = lines[index]
        if index + 1 == len(lines):
            raise IngestError(source, title_line, f"title {title!r} has no abstract")
        abstract = lines[index + 1][1]
        fields = {"title": title, "abstract": abstract}
        papers.append(paper_from_fields(fields, source, title_line, require_id=False))
    return papers


def _check_title_position(lines: list[_Line], index: int, source: str) -> None:
    number, text = lines[index]
    if not _reads_like_prose(text):
        return
    reason = f"expected a title but found prose ({len(text)} characters, {text[:40]!r}...)"
    if index == 0:
        reason += "; the first record has no title"
    elif _reads_like_prose(lines[index - 1][1]):
        reason += (
            f"; line {lines[index - 1][0]} is prose too: a title is missing between them,"
            " or one abstract was split over two lines"
        )
    else:
        reason += (
            f"; the title at line {lines[index - 2][0]} seems to have no abstract "
            f"(line {lines[index - 1][0]} reads like the next title)"
        )
    raise IngestError(source, number, reason)


def _reads_like_prose(text: str) -> bool:
    """True for text that cannot be a title: too long, or ending a sentence.

    A trailing ellipsis does not count as a sentence end: titles sometimes end in "...".
    """
    ends_sentence = text.endswith(".") and not text.endswith("..")
    return len(text) > MAX_TITLE_CHARS or ends_sentence
