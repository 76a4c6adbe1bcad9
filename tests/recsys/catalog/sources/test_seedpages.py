"""Papers-page text dumps: the four real seed files, and the format's edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.catalog.keys import dedupe, title_fingerprint
from recsys.catalog.sources.seedpages import parse_seed_dump
from recsys.domain import IngestError, Paper
from tests.conftest import shared_data

# Counted independently of the parser (awk over non-blank, non-chrome lines: one short
# title line per record, one long abstract line) and checked against it.
RECORDS_PER_FILE = {
    "000_e0d218165683c01d.txt": 32,
    "001_ead3d37ff60aed48.txt": 161,  # FuseChat appears twice
    "002_5ace7712b3885241.txt": 99,
    "003_4a691f7dd1cd5edd.txt": 208,
}
UNIQUE_PAPERS = 494  # 500 records; 6 repeat a title (1 within 001, 5 across files)

ABSTRACT = (
    "We study a problem. Existing methods are slow, and we show why in detail. "
    "Our method is fast and accurate on five benchmarks, with code released online."
)


def _seed_file(name: str) -> Path:
    return shared_data("seed-papers", name)


@pytest.fixture(scope="module")
def seed_papers() -> dict[str, list[Paper]]:
    return {name: parse_seed_dump(_seed_file(name)) for name in RECORDS_PER_FILE}


def test_each_seed_file_yields_its_exact_record_count(
    seed_papers: dict[str, list[Paper]],
) -> None:
    assert {name: len(papers) for name, papers in seed_papers.items()} == RECORDS_PER_FILE


def test_seed_files_hold_494_unique_papers(seed_papers: dict[str, list[Paper]]) -> None:
    everything = [paper for papers in seed_papers.values() for paper in papers]
    unique, skipped = dedupe(everything)
    assert (len(unique), skipped) == (UNIQUE_PAPERS, 6)
    assert len({title_fingerprint(p.title) for p in everything}) == UNIQUE_PAPERS


def test_no_chrome_or_abstract_is_taken_for_a_title(seed_papers: dict[str, list[Paper]]) -> None:
    for papers in seed_papers.values():
        for paper in papers:
            assert not paper.title.startswith(("Subscribe", "Get trending", "byAK", "new"))
            assert len(paper.title) < 200 < len(paper.abstract), (paper.source, paper.line)
            assert paper.url is None and paper.external_id is None


def test_chrome_glued_to_a_title_is_peeled_off(seed_papers: dict[str, list[Paper]]) -> None:
    first = seed_papers["003_4a691f7dd1cd5edd.txt"][0]
    assert (first.title, first.line) == ("Deep Human Parsing with Active Template Regression", 3)
    assert first.abstract.startswith("In this work, the human parsing task")


def test_records_point_at_their_title_line(seed_papers: dict[str, list[Paper]]) -> None:
    first = seed_papers["000_e0d218165683c01d.txt"][0]
    assert first.title == "SWIFT:A Scalable lightWeight Infrastructure for Fine-Tuning"
    assert first.line == 11
    assert first.source == str(_seed_file("000_e0d218165683c01d.txt"))


def test_a_paper_listed_in_two_files_is_one_paper(seed_papers: dict[str, list[Paper]]) -> None:
    title = (
        "Switch Diffusion Transformer: Synergizing Denoising Tasks with Sparse Mixture-of-Experts"
    )
    everything = [paper for papers in seed_papers.values() for paper in papers]
    assert sum(p.title == title for p in everything) == 2
    unique, _ = dedupe(everything)
    assert sum(p.title == title for p in unique) == 1


def test_a_repeated_listing_keeps_the_later_abstract(seed_papers: dict[str, list[Paper]]) -> None:
    papers = seed_papers["001_ead3d37ff60aed48.txt"]
    fusechat = [p for p in papers if p.title == "FuseChat: Knowledge Fusion of Chat Models"]
    assert [p.line for p in fusechat] == [311, 375]
    unique, skipped = dedupe(papers)
    assert skipped == 1
    assert [p for p in unique if p.title == fusechat[0].title] == [fusechat[1]]


# --- the format, on small dumps written by the tests ------------------------------------


def _dump(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dump.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dump_with_blank_lines_and_chrome_parses(tmp_path: Path) -> None:
    path = _dump(
        tmp_path,
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
        "byAK and the research community\n\nMar 12\n\n"
        f"First Paper: A Study\n\n{ABSTRACT}\n\nSecond Paper\n\n{ABSTRACT} Two.",
    )
    papers = parse_seed_dump(path)
    assert [(p.title, p.line) for p in papers] == [
        ("First Paper: A Study", 11),
        ("Second Paper", 15),
    ]
    assert papers[1].abstract == ABSTRACT + " Two."


def test_a_dump_without_blank_lines_and_with_glued_chrome_parses(tmp_path: Path) -> None:
    path = _dump(
        tmp_path,
        "Get trending papers in your email inbox once a day!\n"
        "Get trending papers in your email inbox!\n"
        f"SubscribeDeep Human Parsing\n{ABSTRACT}\n"
        f"Subscribers Matter: A Title That Starts Like Chrome\n{ABSTRACT}\n",
    )
    papers = parse_seed_dump(path)
    assert [(p.title, p.line) for p in papers] == [
        ("Deep Human Parsing", 3),
        ("Subscribers Matter: A Title That Starts Like Chrome", 5),
    ]


def test_a_cut_short_abstract_is_kept(tmp_path: Path) -> None:
    path = _dump(
        tmp_path, f"A Paper\n\n{ABSTRACT}\n\nAnother Paper\n\nThe code will be available at\n"
    )
    assert parse_seed_dump(path)[1].abstract == "The code will be available at"


def test_a_last_title_without_abstract_is_refused(tmp_path: Path) -> None:
    path = _dump(tmp_path, f"A Paper\n\n{ABSTRACT}\n\nOrphan Title\n")
    with pytest.raises(IngestError) as caught:
        parse_seed_dump(path)
    assert (caught.value.source, caught.value.line) == (str(path), 5)
    assert "'Orphan Title' has no abstract" in caught.value.reason


def test_a_title_without_abstract_mid_file_is_refused_at_the_break(tmp_path: Path) -> None:
    path = _dump(
        tmp_path,
        f"A Paper\n\n{ABSTRACT}\n\nOrphan Title\n\nThird Paper\n\n{ABSTRACT}\n\n"
        f"Fourth Paper\n\n{ABSTRACT}\n",
    )
    with pytest.raises(IngestError) as caught:
        parse_seed_dump(path)
    assert caught.value.line == 9
    assert "the title at line 5 seems to have no abstract" in caught.value.reason
    assert str(caught.value).startswith(f"{path}:9: expected a title but found prose")


def test_two_paragraphs_in_a_row_are_refused(tmp_path: Path) -> None:
    path = _dump(tmp_path, f"A Paper\n\n{ABSTRACT}\n\n{ABSTRACT}\n\nB Paper\n\n{ABSTRACT}\n")
    with pytest.raises(IngestError) as caught:
        parse_seed_dump(path)
    assert caught.value.line == 5
    assert "line 3 is prose too" in caught.value.reason


def test_a_dump_starting_with_prose_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"dump.txt:2: .*the first record has no title"):
        parse_seed_dump(_dump(tmp_path, f"Subscribe\n{ABSTRACT}\nA Title\n{ABSTRACT}\n"))


def test_a_dump_of_chrome_only_has_no_papers(tmp_path: Path) -> None:
    assert parse_seed_dump(_dump(tmp_path, "new\n\nSubscribe\n\nMar 11\n")) == []


def test_a_missing_dump_is_refused_at_line_zero(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        parse_seed_dump(tmp_path / "absent.txt")
    assert (caught.value.line, caught.value.reason) == (0, "file not found")
