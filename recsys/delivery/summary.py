"""What a digest says about a paper beyond its title: a short summary and shortened authors.

Pure text functions, cached because a template-mode batch shows the same few hundred papers
across 1,000 digests.
"""

from __future__ import annotations

import re
from functools import lru_cache

SUMMARY_SENTENCES = 2
MAX_SUMMARY_CHARS = 400
MIN_SENTENCE_CHARS = 25
ELLIPSIS = "\u2026"

# A full stop after these is not a sentence end ("e.g. GPT-4", "Smith et al. show").
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "al.", "etc.", "vs.", "cf.", "fig.", "figs.", "eq.", "eqs.", "sec.", "no.",
     "approx.", "resp.", "ref.", "refs.", "dr.", "prof.", "st.", "et."}
)  # fmt: skip
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"“$\\])")
# Abstracts open with background ("Large language models have ...") and state what the paper
# does in a "we propose" sentence and what it found in a results one; those two tell a reader
# most, so they are preferred over position.
_CONTRIBUTION = re.compile(
    r"\b(we|this (paper|work|study|article)|here)\b[^.]{0,80}?\b(propose|present|introduce|"
    r"develop|design|show|demonstrate|find|prove|derive|study|investigate|describe|report)",
    re.IGNORECASE,
)
_RESULT = re.compile(
    r"\b(outperform\w*|improv\w*|achiev\w*|state[- ]of[- ]the[- ]art|results?|significant\w*|"
    r"accura\w*|faster|speed-?up|reduc\w*|surpass\w*|experiments?)\b",
    re.IGNORECASE,
)

# Out of context, "To bridge this gap, we introduce X" points at a gap the reader never saw;
# "We introduce X" says the same. Leading links like these are cut from a chosen sentence.
_BACK_REFERENCE = re.compile(
    r"^(?:(?:however|thus|therefore|hence|consequently|specifically|moreover|furthermore|"
    r"additionally|in addition|in particular|finally|to this end|in this regard)|"
    r"to (?:address|tackle|overcome|bridge|solve|fill|mitigate|remedy|close|alleviate) "
    r"(?:this|these|that|those|such|the above)\b[^,]{0,40}),\s+",
    re.IGNORECASE,
)
# Sentences opening with a contrast state the problem in the previous sentence's terms.
_CONTRAST = re.compile(r"^(however|but|while|although|despite|yet)\b", re.IGNORECASE)


@lru_cache(maxsize=8192)
def summarize(abstract: str, sentences: int = SUMMARY_SENTENCES) -> str:
    """An extractive summary: the abstract's most telling ``sentences``, in their order.

    A sentence stating the contribution ("we propose ...") scores 2, one with a result
    ("outperforms", "achieves") 1, one opening with a contrast ("However, ...") or shorter
    than ``MIN_SENTENCE_CHARS`` -1; ties go to the earlier sentence. A chosen sentence loses
    a leading back-reference ("To bridge this gap, "), and the whole is cut to
    ``MAX_SUMMARY_CHARS`` at a word.

    Examples
    --------
    >>> summarize("Models are big. We propose a small one. It is fast. Results hold.")
    'We propose a small one. Results hold.'
    """
    parts = split_sentences(abstract)
    if len(parts) <= sentences:
        return _cut(" ".join(parts), MAX_SUMMARY_CHARS)
    ranked = sorted(range(len(parts)), key=lambda i: (-_score(parts[i]), i))
    chosen = sorted(ranked[:sentences])
    return _cut(" ".join(_tidy(parts[i]) for i in chosen), MAX_SUMMARY_CHARS)


def split_sentences(text: str) -> list[str]:
    """``text`` as sentences, whitespace collapsed; never split after "e.g.", "et al." etc."""
    flat = " ".join(text.split())
    if not flat:
        return []
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(flat):
        last_word = flat[start : match.start()].rsplit(" ", 1)[-1].lower()
        if last_word in _ABBREVIATIONS or _is_initial(last_word):
            continue
        sentences.append(flat[start : match.start()])
        start = match.end()
    sentences.append(flat[start:])
    return sentences


def _is_initial(word: str) -> bool:
    # "J. Smith": a single letter and a stop is a name's initial, not a sentence end.
    return len(word) == 2 and word[0].isalpha()


def _score(sentence: str) -> int:
    score = 2 if _CONTRIBUTION.search(sentence) else 0
    score += 1 if _RESULT.search(sentence) else 0
    score -= 1 if _CONTRAST.match(sentence) else 0
    return score - 1 if len(sentence) < MIN_SENTENCE_CHARS else score


def _tidy(sentence: str) -> str:
    """``sentence`` without a leading back-reference ("To bridge this gap, we ..." -> "We ...")."""
    rest = _BACK_REFERENCE.sub("", sentence, count=1)
    return rest[:1].upper() + rest[1:] if rest != sentence else sentence


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + ELLIPSIS


# Lower-case particles that belong to the surname: "Adrian Del Maestro" is "A. Del Maestro".
_PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "le", "la", "dos",
     "das", "ter", "ten", "bin", "al", "el", "mac"}
)  # fmt: skip


@lru_cache(maxsize=16384)
def short_name(name: str) -> str:
    """A name as initials and surname: "Ada Lovelace" -> "A. Lovelace".

    "Lovelace, Ada" (surname first) gives the same; hyphenated given names keep both
    initials ("Jean-Pierre Serre" -> "J.-P. Serre"); a one-word name stays as it is.
    """
    flat = " ".join(name.split())
    if "," in flat:
        surname, _, given = (part.strip() for part in flat.partition(","))
        words = given.split()
    else:
        words = flat.split(" ")
        cut = next(
            (i for i, w in enumerate(words[1:-1], 1) if w.lower() in _PARTICLES), len(words) - 1
        )
        surname, words = " ".join(words[cut:]), words[:cut]
    initials = " ".join(_initials(w) for w in words if w)
    return f"{initials} {surname}" if initials else surname


def _initials(given: str) -> str:
    return "-".join(f"{part[0]}." for part in given.split("-") if part)
