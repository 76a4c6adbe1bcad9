"""arXiv OAI-PMH ListRecords answers: a recorded real one, hand-made awkward and broken ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.catalog.sources.oai import parse_list_records
from recsys.catalog.sources.pages import Skipped
from recsys.domain import IngestError

FIXTURES = Path(__file__).parent / "fixtures"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_a_recorded_arxiv_answer_keeps_every_field() -> None:
    page = parse_list_records(_read("oai_arxiv_astro_ph_2013.xml"), "arxiv-astro")

    (paper,) = page.papers
    assert paper.arxiv_id == paper.external_id == "0801.3931"
    assert paper.title == "Dynamical study of 2D and 3D barred galaxy models"
    assert paper.authors == ("T. Manos", "E. Athanassoula")
    assert paper.categories == ("astro-ph",)
    assert paper.published == datetime(2008, 1, 25, tzinfo=UTC)
    assert paper.updated is None
    assert paper.doi == "10.1007/978-3-540-75826-6_11"
    assert paper.journal_ref == (
        "Chaos in Astronomy Astrophysics and Space Science Proceedings 2009, pp 115-122"
    )
    assert paper.comments is not None and paper.comments.startswith("8 pages, 3 figures")
    assert '"Chaos in Astronomy"' in paper.comments  # &quot; decoded
    assert paper.abstract.startswith("We study the dynamics of 2D and 3D barred galaxy")
    assert "\n" not in paper.abstract
    assert (paper.url, paper.pdf_url) == (
        "https://arxiv.org/abs/0801.3931",
        "https://arxiv.org/pdf/0801.3931",
    )
    assert paper.source == "arxiv-astro"
    assert (page.next, page.latest, page.skipped) == (None, "2013-03-26", [])


def test_bad_records_are_skipped_with_their_identifier_and_reason() -> None:
    page = parse_list_records(_read("oai_records_mixed.xml"), "arxiv-cs")

    assert [p.arxiv_id for p in page.papers] == ["2611.00001", "2401.00007"]
    assert page.skipped == [
        Skipped("oai:arXiv.org:2611.00002", "deleted at the source", bad=False),
        Skipped("oai:arXiv.org:2611.00003", "2611.00003 has no <title>"),
        Skipped("oai:arXiv.org:2611.00004", "<created> is not a YYYY-MM-DD date: '19 Nov 2026'"),
    ]
    assert (page.next, page.total, page.latest) == ("6960524|1001", 2005, "2026-11-21")


def test_a_record_keeps_primary_category_first_and_the_first_doi() -> None:
    first, revised = parse_list_records(_read("oai_records_mixed.xml"), "arxiv-cs").papers

    assert first.title == "Analytical engines for learning"
    assert first.authors == ("Ada Lovelace", "Charles Babbage Jr")
    assert first.categories == ("cs.LG", "stat.ML")  # primary first, the repeat dropped
    assert first.doi == "10.1000/xyz.1"
    assert (first.comments, first.journal_ref) == ("12 pages", "J. Mach. 1 (2026) 1-12")
    assert first.abstract == "We build an engine. It learns."
    # A new version: first submission date kept as published, the revision as updated.
    assert revised.published == datetime(2024, 1, 2, tzinfo=UTC)
    assert revised.updated == datetime(2026, 11, 19, tzinfo=UTC)


def test_no_records_match_is_an_empty_last_page() -> None:
    page = parse_list_records(_read("oai_no_records_match.xml"), "arxiv-cs")

    assert (page.papers, page.skipped, page.next, page.latest) == ([], [], None, None)


def test_an_oai_error_fails_with_its_code_and_message() -> None:
    with pytest.raises(IngestError, match="OAI-PMH error badResumptionToken: The value of"):
        parse_list_records(_read("oai_bad_resumption_token.xml"), "arxiv-cs")


def test_a_cut_off_answer_fails_at_its_line() -> None:
    with pytest.raises(IngestError) as caught:
        parse_list_records(_read("oai_truncated.xml"), "arxiv-cs")

    assert caught.value.reason.startswith("malformed XML")
    assert caught.value.line == 7


def test_an_answer_that_is_not_oai_pmh_is_refused() -> None:
    with pytest.raises(IngestError, match="expected an OAI-PMH answer, found <html>"):
        parse_list_records(b"<html><body>Service Unavailable</body></html>", "arxiv-cs")
