"""The two-sentence summary under each title, and the shortened author names."""

from __future__ import annotations

import pytest

from recsys.delivery.summary import MAX_SUMMARY_CHARS, short_name, split_sentences, summarize

# arXiv:1706.03762's abstract, shortened: background first, then what the paper does.
ATTENTION = (
    "The dominant sequence transduction models are based on complex recurrent or "
    "convolutional neural networks. The best performing models also connect the encoder and "
    "decoder through an attention mechanism. We propose a new simple network architecture, "
    "the Transformer, based solely on attention mechanisms. Experiments on two machine "
    "translation tasks show these models to be superior in quality while being more "
    "parallelizable. The Transformer generalizes well to other tasks."
)


def test_it_picks_the_contribution_and_the_result_in_their_order() -> None:
    assert summarize(ATTENTION) == (
        "We propose a new simple network architecture, the Transformer, based solely on "
        "attention mechanisms. Experiments on two machine translation tasks show these models "
        "to be superior in quality while being more parallelizable."
    )


def test_without_cues_it_keeps_the_first_two_sentences() -> None:
    assert summarize("Cats sleep a lot. Dogs bark at night. Birds sing at dawn.") == (
        "Cats sleep a lot. Dogs bark at night."
    )


def test_a_short_abstract_is_kept_whole_and_an_empty_one_gives_nothing() -> None:
    assert summarize("  One sentence\n only.  ") == "One sentence only."
    assert summarize("") == ""


def test_a_very_long_sentence_is_cut_at_a_word_with_an_ellipsis() -> None:
    summary = summarize("We propose " + "a very long idea " * 60 + ". Done.")
    assert len(summary) <= MAX_SUMMARY_CHARS
    assert summary.endswith("\u2026")


def test_sentences_are_not_split_after_abbreviations_or_initials() -> None:
    text = "Tools, e.g. GPT-4, help. Smith et al. Found it. J. Smith agrees. Done (see Fig. 2)."
    assert split_sentences(text) == [
        "Tools, e.g. GPT-4, help.",
        "Smith et al. Found it.",
        "J. Smith agrees.",
        "Done (see Fig. 2).",
    ]


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("Ada Lovelace", "A. Lovelace"),
        ("Lovelace, Ada", "A. Lovelace"),
        ("Jean-Pierre  Serre", "J.-P. Serre"),
        ("Adrian Del Maestro", "A. Del Maestro"),
        ("Alan Mathison Turing", "A. M. Turing"),
        ("Plato", "Plato"),
    ],
)
def test_short_name(name: str, short: str) -> None:
    assert short_name(name) == short


def test_a_leading_back_reference_is_cut_and_a_contrast_is_passed_over() -> None:
    abstract = (
        "Video diffusion models are slow. However, caching features helps in general. "
        "To bridge this gap, we introduce AV-DiT, an audio-visual transformer. "
        "Thus, it achieves state-of-the-art quality with fewer parameters."
    )
    assert summarize(abstract) == (
        "We introduce AV-DiT, an audio-visual transformer. "
        "It achieves state-of-the-art quality with fewer parameters."
    )
