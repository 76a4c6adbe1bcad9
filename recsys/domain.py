"""Plain domain records shared by ingestion, storage, the recommender and delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Paper:
    """A normalised paper, as every ingestion source produces it.

    ``arxiv_id`` is stored without its version suffix (``2401.01234``, not ``...v2``) so a
    revision updates the paper instead of adding one. ``source`` and ``line`` say where the
    record came from, so errors and reports can point at it.
    """

    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    published: datetime | None = None
    url: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    external_id: str | None = None
    source: str = ""
    line: int = 0
    # Added for harvesting (issue 11); optional so every existing parser is unchanged.
    updated: datetime | None = None  # the source's last revision, e.g. arXiv's newest version
    journal_ref: str | None = None
    comments: str | None = None
    pdf_url: str | None = None

    @property
    def text(self) -> str:
        """Title and abstract, the text the embedder reads."""
        return f"{self.title}. {self.abstract}".strip()


class IngestError(ValueError):
    """A malformed input record. Names the file, the line and the reason."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")


@dataclass
class IngestReport:
    """What one ingestion run did; printed by ``paperboy ingest --json``."""

    read: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    # Values dropped from records that were kept, e.g. a javascript: url ("file:line: ...").
    warnings: list[str] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON; ``warnings`` only when there are some (older readers)."""
        out: dict[str, object] = {
            "read": self.read,
            "new": self.new,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": list(self.errors),
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out
