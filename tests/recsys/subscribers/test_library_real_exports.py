"""Library import on real BibTeX and CSL-JSON exports (sources in fixtures/library/README.md)."""

from __future__ import annotations

from pathlib import Path

from recsys.subscribers.library import Library, Skipped, parse_library

FIXTURES = Path(__file__).parent / "fixtures" / "library"


def _read(name: str) -> Library:
    return parse_library((FIXTURES / name).read_text(encoding="utf-8"))


def _by_title(library: Library) -> dict[str | None, tuple[str, ...]]:
    return {r.seed.title: r.authors for r in library.references}


def test_the_biblatex_examples_import_all_but_their_two_title_less_sets() -> None:
    library = _read("biblatex-examples.bib")

    assert len(library.references) == 90  # 100 @-blocks: 8 @string, 2 @set
    assert library.skipped == (
        Skipped(
            "line 26",
            "@set{set}: a @set only groups other entries (entryset = {herrmann,aksin,yoon}); "
            "they are imported on their own",
        ),
        Skipped(
            "line 31",
            "@set{stdmodel}: a @set only groups other entries (entryset = "
            "{glashow,weinberg,salam}); they are imported on their own",
        ),
    )
    authors = _by_title(library)
    assert authors["The True Frontier"] == ("Gary Westfahl",)  # a crossref child
    assert authors[
        "Effect of immobilization on catalytic characteristics of saturated "
        "Pd-N-heterocyclic carbenes in Mizoroki-Heck reactions"
    ][:2] == ("Özge Aksın", "Hayati Türkmen")
    hyphenated = (  # biblatex's \hyphen
        "Computation of methodology-independent ionic solvation free energies from "
        "molecular simulations"
    )
    assert authors[hyphenated] == ("M. A. Kastenholz", "Philippe H. Hünenberger")
    sici = "10.1002/(sici)1096-987x(199803)19:4<377::aid-jcc1>3.0.co;2-p"
    assert sici in {r.seed.doi for r in library.references}  # not cut at the "<"
    baez = next(r for r in library.references if r.seed.arxiv_id == "math/0307200")
    assert baez.seed.title == "Higher-Dimensional Algebra V: 2-Groups"


def test_a_star_in_a_citation_key_no_longer_refuses_the_library() -> None:
    library = _read("bbt-discarded-873-excerpt.bib")

    assert len(library.references) == 18
    assert _by_title(library)["Total-Order Planning with Partially Ordered Subtasks"] == (
        "Dana Nau", "Héctor Muñoz-Avila", "Yue Cao", "Amnon Lotem", "Steven Mitchell",
    )  # fmt: skip
    assert [str(s) for s in library.skipped] == [
        "line 153: unknown @string 'AIM'; put the value in braces; the entry from line 149 "
        "is skipped"
    ]


def test_latex_accents_become_unicode() -> None:
    [reference] = _read("bbt-ring-above-1115.bib").references

    assert reference.seed.title == "Software Framework for Topic Modelling with Large Corpora"
    assert reference.authors == ("Radim Řehůřek", "Petr Sojka")


def test_crossref_children_and_their_parent_are_all_imported() -> None:
    library = _read("bbt-crossref-2373.bib")

    assert [r.seed.title for r in library.references] == [
        "Lebanon", "Global Civil Society: Dimensions of the Nonprofit Sector", "Lebanon",
    ]  # fmt: skip
    assert library.skipped == ()


def test_csl_json_titles_lose_their_rich_text_markup() -> None:
    titles = [r.seed.title for r in _read("bbt-pandoc-citation-export.csl.json").references]
    titles += [r.seed.title for r in _read("bbt-english-language-tag-3100.csl.json").references]

    assert titles == [
        "The physical volcanology of the 1600 eruption of Huaynaputina, southern Peru",
        "Skizze zur Auslegungsgeschichte der Bücher Prouerbia und Ecclesiastes in der "
        "abendländischen Kirche",
        "Samuel Presbiter: Notes from the school of William de Montibus. Collecta ex diuersis "
        "auditis in scola magistri Willelmi de Monte",
        "The Gospel according to St. Matthew, from the St. Germain ms. (g1), now numbered Lat. "
        "11553 in the National Library at Paris",
        "A verse translation of Abbo of St. Germain's Bella Parisiacae urbis",
        "The hagiography of doubt and scepticism",
        "P. Vergilius Maro. Bucolica et Georgica",
    ]
