"""The sources file: the shape in issue 11, defaults per kind, errors naming file/source/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.catalog.harvest.config import (
    ArxivApiSource,
    ArxivOaiSource,
    BiorxivSource,
    RssSource,
    SourcesError,
    load_sources,
    parse_sources,
)

ISSUE_EXAMPLE = """
[[source]]
name = "arxiv-cs"
kind = "arxiv-oai"
url = "https://oaipmh.arxiv.org/oai"   # any OAI-PMH base URL
sets = ["cs", "stat"]

[[source]]
name = "arxiv-testing"
kind = "arxiv-api"
url = "https://export.arxiv.org/api/query"
query = "all:testing"
"""


def test_the_issues_example_reads_as_two_sources() -> None:
    oai, api = parse_sources(ISSUE_EXAMPLE, "sources.toml")

    assert oai == ArxivOaiSource(
        name="arxiv-cs", kind="arxiv-oai", url="https://oaipmh.arxiv.org/oai", sets=["cs", "stat"]
    )
    assert isinstance(api, ArxivApiSource)
    assert (api.query, api.min_interval_s, api.page_size) == ("all:testing", 3.0, 100)


def test_every_kind_has_a_default_url() -> None:
    text = """
    [[source]]
    name = "oai"
    kind = "arxiv-oai"
    sets = ["physics:hep-th"]
    [[source]]
    name = "lg-daily"
    kind = "rss"
    url = "https://rss.arxiv.org/rss/cs.LG"
    [[source]]
    name = "medrxiv"
    kind = "biorxiv"
    server = "medrxiv"
    category = "epidemiology"
    """
    oai, rss, med = parse_sources(text, "s.toml")

    assert oai.url == "https://oaipmh.arxiv.org/oai"
    assert isinstance(rss, RssSource) and rss.url == "https://rss.arxiv.org/rss/cs.LG"
    assert med == BiorxivSource(
        name="medrxiv", kind="biorxiv", server="medrxiv", category="epidemiology"
    )
    assert med.url == "https://api.biorxiv.org"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('name = "a"\nkind = "arxiv-oai"', "s.toml: source 'a' (#1): field 'sets': Field required"),
        ('name = "a"\nkind = "arxiv-oai"\nsets = []', "source 'a' (#1): field 'sets': List should"),
        ('name = "a"\nkind = "ftp"', "source 'a' (#1): field 'kind': 'ftp' is not one of"),
        ('name = "a"', "source 'a' (#1): field 'kind': missing"),
        ('kind = "rss"\nurl = "u"', "source #1: field 'name': Field required"),
        ('name = "a b"\nkind = "rss"\nurl = "u"', "field 'name': String should match pattern"),
        ('name = "a"\nkind = "rss"\nurl = "u"\nsets = ["cs"]', "field 'sets': Extra inputs"),
        ('name = "a"\nkind = "arxiv-api"\nquery = "q"\npage_size = 5000', "field 'page_size'"),
        ('name = "a"\nkind = "biorxiv"\nserver = "arxiv"', "field 'server': Input should be"),
    ],
)
def test_a_bad_source_is_refused_naming_file_source_and_field(table: str, message: str) -> None:
    with pytest.raises(SourcesError) as caught:
        parse_sources(f"[[source]]\n{table}\n", "s.toml")

    assert message in str(caught.value)
    assert str(caught.value).startswith("s.toml: ")


def test_two_sources_with_one_name_are_refused() -> None:
    text = '[[source]]\nname = "x"\nkind = "rss"\nurl = "a"\n' * 2

    with pytest.raises(SourcesError, match="s.toml: source 'x': field 'name': used twice"):
        parse_sources(text, "s.toml")


def test_invalid_toml_and_unknown_keys_are_refused() -> None:
    with pytest.raises(SourcesError, match="s.toml: not valid TOML"):
        parse_sources("[[source]\n", "s.toml")
    with pytest.raises(SourcesError, match="unknown top-level key 'sources'"):
        parse_sources('[[sources]]\nname = "x"\n', "s.toml")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(SourcesError, match=f"{missing}: cannot read the sources file"):
        load_sources(missing)


def test_an_empty_file_lists_no_sources(tmp_path: Path) -> None:
    empty = tmp_path / "sources.toml"
    empty.write_text("# nothing yet\n")

    assert load_sources(empty) == []
