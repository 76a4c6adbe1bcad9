"""RSS 2.0, Atom and RSS 1.0 feeds: arXiv's (as its specification shows them) and a journal's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.catalog.sources.feeds import parse_feed
from recsys.catalog.sources.pages import Skipped
from recsys.domain import IngestError
from recsys.testing.sources import FeedItem, arxiv_rss

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["arxiv_rss_math_oc.xml", "arxiv_atom_math_oc.xml"])
def test_an_arxiv_replacement_updates_the_paper_and_keeps_every_field(name: str) -> None:
    page = parse_feed((FIXTURES / name).read_bytes(), "arxiv-math-oc")

    (paper,) = page.papers
    assert paper.arxiv_id == paper.external_id == "2203.01250"
    assert paper.title == "Mass concentration in rescaled first order integral functionals"
    assert paper.abstract.startswith("We consider first order local minimization problems")
    assert "Announce Type" not in paper.abstract
    assert paper.authors == ("Antonin Monteil", "Paul Pegon")
    assert paper.categories == ("math.AP", "math.OC")
    assert paper.doi == "10.5802/jep.257"
    assert paper.journal_ref is not None and paper.journal_ref.startswith("Journal de l")
    # replace-cross: a new version, so the announcement date is the paper's update.
    assert paper.published is None
    assert paper.updated == datetime(2024, 8, 23, 4, 0, tzinfo=UTC)
    assert paper.url == "https://arxiv.org/abs/2203.01250"
    assert paper.pdf_url == "https://arxiv.org/pdf/2203.01250"
    assert page.skipped == []


def test_new_and_cross_announcements_are_published_papers() -> None:
    three = "Ada Lovelace, Alan Turing and Grace Hopper"
    feed = arxiv_rss([
        FeedItem("2611.00001", "A new one", "new", creators=three),
        FeedItem("2611.00002", "A cross-list", "cross", categories=("stat.ML", "cs.LG")),
        FeedItem("cs/0112017", "An old-style id", "replace", version=4),
    ])  # fmt: skip

    new, cross, old = parse_feed(feed.encode(), "arxiv-cs-lg").papers

    assert new.authors == ("Ada Lovelace", "Alan Turing", "Grace Hopper")
    assert new.published == datetime(2026, 11, 20, 5, 0, tzinfo=UTC) and new.updated is None
    assert cross.categories == ("stat.ML", "cs.LG") and cross.published is not None
    assert (old.arxiv_id, old.published) == ("cs/0112017", None)


def test_a_journal_feed_gives_doi_authors_and_journal() -> None:
    page = parse_feed((FIXTURES / "journal_rss1_nature_like.xml").read_bytes(), "nature")

    (paper,) = page.papers
    assert paper.title == "Neurons that count"
    assert paper.doi == "10.1038/s41586-026-00001-1"
    assert paper.authors == ("Kim Lee", "Ann Other")
    assert paper.abstract == "Counting neurons & more."
    assert paper.journal_ref == "Nature"
    assert paper.published == datetime(2026, 11, 20, tzinfo=UTC)
    assert paper.arxiv_id is None
    assert page.skipped == [
        Skipped("https://www.nature.com/articles/s41586-026-00002-2", "entry has no title")
    ]


def test_a_page_that_is_not_a_feed_is_refused() -> None:
    with pytest.raises(IngestError, match="not an RSS or Atom feed"):
        parse_feed((FIXTURES / "not_a_feed.html").read_bytes(), "nature")


def test_a_journal_creator_written_surname_first_stays_one_author() -> None:
    feed = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <channel><title>J</title><item><title>Solo work</title><link>https://j.org/1</link>
    <dc:creator>Lovelace, Ada</dc:creator></item></channel></rss>"""

    (paper,) = parse_feed(feed, "journal").papers

    assert paper.authors == ("Lovelace, Ada",)


def test_a_body_naming_a_local_file_is_not_read_as_that_file(tmp_path: Path) -> None:
    local = tmp_path / "feed.xml"
    local.write_bytes((FIXTURES / "arxiv_rss_math_oc.xml").read_bytes())

    with pytest.raises(IngestError, match="not an RSS or Atom feed"):
        parse_feed(str(local).encode(), "evil")
    with pytest.raises(IngestError, match="not an RSS or Atom feed"):
        parse_feed("http://127.0.0.1:9/feed", "evil")
