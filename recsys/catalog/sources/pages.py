"""What a parser of an outside source's answer returns: one page of papers.

A harvested answer is a page, not a file: good records become papers, a bad record is
skipped and reported (the rest of the page still counts), and the page says where the next
one starts and how far the source has got, for the harvest's watermark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys.domain import Paper


@dataclass(frozen=True)
class Skipped:
    """A record left out of a page: the source's identifier for it and why."""

    identifier: str
    reason: str
    # False for a record the source withdrew (an OAI-PMH deleted record): left out on
    # purpose, counted as skipped, not reported as an error.
    bad: bool = True

    def __str__(self) -> str:
        return f"{self.identifier}: {self.reason}"


@dataclass(frozen=True)
class Page:
    """One parsed answer.

    ``next`` is the source's own continuation (an OAI-PMH resumption token, a bioRxiv
    cursor) or None on the last page; ``latest`` the newest date stamp seen (ISO text that
    sorts as it compares), or None.
    """

    papers: list[Paper] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    next: str | None = None
    latest: str | None = None
    total: int | None = None  # records in the whole list, when the source says
