"""bioRxiv / medRxiv ``details`` answers, hand-made in the API's documented shape."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.catalog.sources.biorxiv import parse_details
from recsys.catalog.sources.pages import Skipped
from recsys.domain import IngestError

FIXTURES = Path(__file__).parent / "fixtures"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_a_details_page_gives_papers_and_the_next_cursor() -> None:
    page = parse_details(_read("biorxiv_details_page.json"), "biorxiv-neuro")

    first, third_version = page.papers
    assert first.doi == first.external_id == "10.1101/2026.11.18.000001"
    assert first.title == "Single-cell atlas of the zebrafish fin"
    assert first.authors == ("Smith, J. A.", "Doe, J.", "Roe, R.")
    assert first.categories == ("developmental biology",)
    assert first.published == datetime(2026, 11, 19, tzinfo=UTC) and first.updated is None
    assert first.url == "https://www.biorxiv.org/content/10.1101/2026.11.18.000001v1"
    assert first.pdf_url == "https://www.biorxiv.org/content/10.1101/2026.11.18.000001v1.full.pdf"
    assert first.journal_ref is None
    # A later version updates the paper (same DOI) and says where it was published.
    assert third_version.published is None
    assert third_version.updated == datetime(2026, 11, 20, tzinfo=UTC)
    assert third_version.journal_ref == "published as https://doi.org/10.1038/s41586-026-00001-1"
    assert page.skipped == [
        Skipped("not-a-doi", "'doi' 'not-a-doi' is not a DOI"),
        Skipped("10.1101/2026.11.19.000004", "10.1101/2026.11.19.000004: 'date' is not "
                "YYYY-MM-DD: '20/11/2026'"),
    ]  # fmt: skip
    assert (page.next, page.total, page.latest) == ("4", 104, "2026-11-20")


def test_no_posts_found_is_an_empty_last_page() -> None:
    page = parse_details(_read("biorxiv_no_posts.json"), "biorxiv-neuro")

    assert (page.papers, page.next) == ([], None)


def test_the_last_page_has_no_next_cursor() -> None:
    body = b'{"messages":[{"status":"ok","cursor":100,"count":4,"total":"104"}],"collection":[]}'

    assert parse_details(body, "biorxiv-neuro").next is None


def test_a_cut_off_answer_is_refused() -> None:
    with pytest.raises(IngestError, match="malformed JSON"):
        parse_details(_read("biorxiv_truncated.json"), "biorxiv-neuro")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(IngestError, match="bioRxiv API status 'interval not valid'"):
        parse_details(b'{"messages":[{"status":"interval not valid"}]}', "biorxiv-neuro")


def test_a_recorded_real_record_keeps_every_field_a_reader_uses() -> None:
    # The record is bioRxiv's own answer for 10.1101/456574, verbatim (see fixtures/README.md).
    page = parse_details(_read("biorxiv_details_recorded_456574.json"), "biorxiv-neuro")

    [paper] = page.papers
    assert (paper.doi, paper.external_id) == ("10.1101/456574", "10.1101/456574")
    assert paper.title == "Complementary subnetworks of cortical somatostatin interneurons"
    assert paper.authors[0] == "Naka, A." and paper.authors[-1] == "Adesnik, H."
    assert len(paper.authors) == 7
    assert paper.categories == ("neuroscience",)
    assert paper.published == datetime(2018, 10, 30, tzinfo=UTC) and paper.updated is None
    assert paper.url == "https://www.biorxiv.org/content/10.1101/456574v1"
    assert paper.pdf_url == "https://www.biorxiv.org/content/10.1101/456574v1.full.pdf"
    assert paper.journal_ref == "published as https://doi.org/10.7554/elife.43696"
    # bioRxiv's abstracts carry double spaces; the stored text has single ones.
    assert paper.abstract.startswith("The neocortex is organized into discrete layers")
    assert "densest bottom up" in paper.abstract and "  " not in paper.abstract
    assert (page.skipped, page.next, page.total, page.latest) == ([], None, 1, "2018-10-30")
