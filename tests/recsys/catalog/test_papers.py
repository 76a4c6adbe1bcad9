from datetime import timedelta

from sqlalchemy import select

from recsys.catalog.papers import default_url, upsert_papers
from recsys.db.models import PaperRow
from recsys.db.session import Database
from recsys.domain import Paper
from tests.conftest import NOW


def _papers(db: Database) -> list[PaperRow]:
    with db.session() as s:
        return list(s.scalars(select(PaperRow).order_by(PaperRow.id)))


def test_a_new_version_of_an_arxiv_paper_updates_it(db: Database) -> None:
    with db.session() as s:
        upsert_papers(s, [Paper("Graphs", "v1 text", arxiv_id="2401.00001")], NOW)
    with db.session() as s:
        report = upsert_papers(
            s, [Paper("Graphs", "v2 text", arxiv_id="2401.00001")], NOW + timedelta(days=1)
        )
    assert (report.new, report.updated, report.skipped) == (0, 1, 0)
    (row,) = _papers(db)
    assert (row.abstract, row.created_at, row.updated_at) == (
        "v2 text",
        NOW,
        NOW + timedelta(days=1),
    )


def test_the_same_title_with_different_punctuation_is_the_same_paper(db: Database) -> None:
    with db.session() as s:
        upsert_papers(s, [Paper("SWIFT:A Scalable Infrastructure", "x")], NOW)
        report = upsert_papers(s, [Paper("SWIFT: a scalable infrastructure", "x")], NOW)
    assert (report.new, report.updated) == (0, 1)  # the later spelling wins
    assert [r.title for r in _papers(db)] == ["SWIFT: a scalable infrastructure"]


def test_a_doi_matches_across_sources(db: Database) -> None:
    with db.session() as s:
        upsert_papers(s, [Paper("Old title", "x", doi="10.1/abc")], NOW)
        report = upsert_papers(s, [Paper("New title", "x", doi="10.1/abc")], NOW)
    assert report.updated == 1
    assert [r.title for r in _papers(db)] == ["New title"]


def test_same_title_but_different_arxiv_ids_are_two_papers(db: Database) -> None:
    with db.session() as s:
        upsert_papers(s, [Paper("Attention", "a", arxiv_id="1706.00001")], NOW)
        report = upsert_papers(s, [Paper("Attention", "b", arxiv_id="2001.00002")], NOW)
    assert report.new == 1
    assert len(_papers(db)) == 2


def test_every_paper_gets_a_url_to_land_on() -> None:
    assert default_url(Paper("T", url="https://a.org/x")) == "https://a.org/x"
    assert default_url(Paper("T", arxiv_id="2401.00001")) == "https://arxiv.org/abs/2401.00001"
    assert default_url(Paper("T", doi="10.1/abc")) == "https://doi.org/10.1/abc"
    assert default_url(Paper("Deep Nets")) == (
        "https://arxiv.org/search/?searchtype=title&query=Deep+Nets"
    )


def test_harvested_fields_are_stored_and_kept_when_a_later_source_lacks_them(db: Database) -> None:
    full = Paper(
        "Graphs", "v1", arxiv_id="2401.00001", journal_ref="J. Graphs 1 (2026)",
        comments="12 pages", pdf_url="https://arxiv.org/pdf/2401.00001",
        updated=NOW - timedelta(days=2),
    )  # fmt: skip
    with db.session() as s:
        first = upsert_papers(s, [full, Paper("Trees", "x", arxiv_id="2401.00002")], NOW)
    with db.session() as s:
        upsert_papers(s, [Paper("Graphs", "v2", arxiv_id="2401.00001")], NOW)

    graphs, trees = _papers(db)
    assert first.new_ids == [graphs.id, trees.id]  # in the order given
    assert (graphs.abstract, graphs.journal_ref, graphs.comments) == (
        "v2", "J. Graphs 1 (2026)", "12 pages",
    )  # fmt: skip
    assert graphs.pdf_url == "https://arxiv.org/pdf/2401.00001"
    assert graphs.updated == NOW - timedelta(days=2)
    assert (trees.journal_ref, trees.updated) == (None, None)
