"""The Atom parser on real recorded arXiv API answers (sources in fixtures/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from recsys.catalog.sources.files import read_papers
from recsys.domain import IngestError

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_recorded_search_gives_ten_storable_papers() -> None:
    warnings: list[IngestError] = []
    papers = read_papers(FIXTURES / "arxiv-query-electron-proton.xml", warn=warnings.append)

    assert len(papers) == 10 and warnings == []
    first = papers[0]
    assert (first.arxiv_id, first.external_id, first.line) == ("nucl-ex/0408020",) * 2 + (10,)
    assert first.title.startswith("Two-photon exchange and elastic scattering of elec")
    assert first.authors[:2] == ("J. Arrington", "V. F. Dmitriev")
    assert first.categories == ("nucl-ex", "hep-ph")
    assert first.published == datetime(2004, 8, 18, 23, 13, 32, tzinfo=UTC)
    # The 2025 feed has no rel="alternate" link, so the abs page is built from the id.
    assert first.url == "https://arxiv.org/abs/nucl-ex/0408020"
    assert [p.doi for p in papers[1:4]] == [
        "10.5170/cern-2013-002.237", None, "10.1103/physrevaccelbeams.20.101301",
    ]  # fmt: skip


def test_a_recorded_id_list_with_missing_ids_gives_the_one_that_exists() -> None:
    [paper] = read_papers(FIXTURES / "arxiv-query-missing-id.xml")

    assert paper.arxiv_id == "2201.13452"
    assert paper.authors == ("Hong-Ming Yin", "Jun Zou")
    assert paper.categories == ("math.AP",)


def test_a_recorded_empty_answer_gives_no_papers() -> None:
    assert read_papers(FIXTURES / "arxiv-query-empty.xml") == []
