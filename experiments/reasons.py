"""An independent check of the reasons in sent digests: is what a reason cites really close?

A reason that quotes a paper (``Similar to “T” you read``) or an interest (``Matches your
interest “K”``) makes a claim a reader can test. This audit tests it with a similarity that
shares nothing with the ranker: a plain TF-IDF (scikit-learn defaults, English stop words)
fitted on the title and abstract of every paper in the database, no SVD. A citation is
*close* when the cosine between the cited text and the item reaches ``threshold``; 0.10 is
about the similarity of a paper's 10th nearest neighbour on the seed-paper corpus, while a
random pair of papers scores about 0.04.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, PaperRow

CITES_PAPER = re.compile(r"^Similar to “(?P<cited>.+)” you read$")
CITES_INTEREST = re.compile(r"^Matches your interest “(?P<cited>.+)”$")
CLOSE = 0.10


@dataclass
class ReasonAudit:
    """How many reasons cite something, and how many of those cite something close."""

    items: int = 0
    citing: int = 0
    close: int = 0
    threshold: float = CLOSE
    by_reason: dict[str, int] = field(default_factory=dict)
    far_examples: list[dict[str, object]] = field(default_factory=list)

    @property
    def close_share(self) -> float | None:
        return self.close / self.citing if self.citing else None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "close_share": self.close_share}


def audit_reasons(session: Session, threshold: float = CLOSE, examples: int = 5) -> ReasonAudit:
    """Check every stored digest item's reason against an independent TF-IDF similarity."""
    papers = session.execute(select(PaperRow.id, PaperRow.title, PaperRow.abstract)).all()
    items = session.execute(select(DigestItemRow.paper_id, DigestItemRow.reason)).all()
    audit = ReasonAudit(items=len(items), threshold=threshold)
    if not papers or not items:
        return audit
    texts = [f"{title}. {abstract}" for _, title, abstract in papers]
    tfidf = TfidfVectorizer(stop_words="english").fit(texts)
    matrix = tfidf.transform(texts)
    row_of = {pid: row for row, (pid, _, _) in enumerate(papers)}
    row_of_title = {title: row for row, (_, title, _) in enumerate(papers)}
    kinds: Counter[str] = Counter()
    for paper_id, reason in items:
        cited, kind = _cited(reason)
        kinds[kind] += 1
        if cited is None:
            continue
        audit.citing += 1
        if kind == "paper" and cited in row_of_title:
            cited_vector = matrix[row_of_title[cited]]
        else:
            cited_vector = tfidf.transform([cited])
        cosine = float((cited_vector @ matrix[row_of[paper_id]].T).toarray()[0, 0])
        if cosine >= threshold:
            audit.close += 1
        elif len(audit.far_examples) < examples:
            audit.far_examples.append(
                {"item": papers[row_of[paper_id]][1], "reason": reason, "cosine": round(cosine, 3)}
            )
    audit.by_reason = dict(kinds.most_common())
    return audit


def _cited(reason: str) -> tuple[str | None, str]:
    """The quoted text of a citing reason and its kind, or ``(None, the reason itself)``."""
    for kind, pattern in (("paper", CITES_PAPER), ("interest", CITES_INTEREST)):
        match = pattern.match(reason)
        if match:
            return match.group("cited"), kind
    return None, reason


def nearest_neighbour_cosine(texts: list[str], rank: int = 10) -> float:
    """Median TF-IDF cosine of a paper with its ``rank``-th neighbour (for the threshold)."""
    matrix = TfidfVectorizer(stop_words="english").fit_transform(texts)
    cosines = (matrix @ matrix.T).toarray()
    np.fill_diagonal(cosines, -1.0)
    return float(np.median(-np.partition(-cosines, rank - 1, axis=1)[:, rank - 1]))
