"""Composing a digest e-mail: structure, headers, content, escaping and limits."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from recsys.delivery.compose import (
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
    DigestEmail,
    compose,
    html_part,
    short_authors,
    subject_line,
    text_part,
    thin_day_line,
)
from recsys.subscribers.links import LinkMaker
from recsys.testing.samples import FROM, SENT_AT, line


def test_it_is_multipart_alternative_with_text_first_then_html(message: EmailMessage) -> None:
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]


def test_it_sets_address_subject_date_and_digest_headers(message: EmailMessage) -> None:
    assert message["From"] == FROM
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["Subject"] == "Your papers for Saturday 21 November 2026"
    assert message["Date"].datetime == SENT_AT
    assert message["Message-ID"].endswith("@paperboy.example>")
    assert message["X-Paperboy-Digest-Id"] == "42"


def test_it_sets_one_click_unsubscribe_headers(message: EmailMessage) -> None:
    assert message["List-Unsubscribe"] == "<https://paperboy.example/u/42?sig=abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_to_without_a_name_is_the_bare_address(digest: DigestEmail) -> None:
    message = compose(replace(digest, to_name=None), FROM, now=SENT_AT)
    assert message["To"] == "ada@example.org"


def test_every_paper_title_and_link_is_in_both_parts(
    message: EmailMessage, digest: DigestEmail
) -> None:
    text, html = text_part(message), html_part(message)
    for item in digest.items:
        assert item.title in text and item.title in html
        assert item.reason in text and item.reason in html
        for url in (item.click_url, item.more_url, item.less_url):
            assert url in text
            assert f'href="{url.replace("&", "&amp;")}"' in html


def test_title_links_to_the_tracked_click_url(message: EmailMessage) -> None:
    html = html_part(message)
    link = re.search(r'<a href="([^"]*)"[^>]*>Attention Is All You Need</a>', html)
    assert link is not None
    assert link.group(1) == "https://paperboy.example/c/1?t=tok1&amp;d=42"


def test_footer_has_unsubscribe_and_preferences_links(message: EmailMessage) -> None:
    text, html = text_part(message), html_part(message)
    assert "Unsubscribe: https://paperboy.example/u/42?sig=abc" in text
    assert "Preferences: https://paperboy.example/prefs?sig=abc" in text
    assert '<a href="https://paperboy.example/u/42?sig=abc"' in html
    assert '<a href="https://paperboy.example/prefs?sig=abc"' in html


def test_preferences_link_is_left_out_when_not_given(digest: DigestEmail) -> None:
    message = compose(replace(digest, preferences_url=None), FROM, now=SENT_AT)
    assert "Preferences" not in text_part(message)
    assert "Preferences" not in html_part(message)


def test_html_has_no_style_block_and_styles_every_element_inline(message: EmailMessage) -> None:
    html = html_part(message)
    assert "<style" not in html.lower()
    assert "class=" not in html
    assert "max-width:640px" in html
    for tag in re.findall(r"<(?:a|p|div|td|table|h1|body)\b[^>]*>", html):
        assert 'style="' in tag, tag


def test_more_and_less_like_this_links_are_labelled(message: EmailMessage) -> None:
    html = html_part(message)
    assert html.count(">More like this</a>") == 3
    assert html.count(">Less like this</a>") == 3


def test_html_escapes_markup_in_a_title_but_text_keeps_it(digest: DigestEmail) -> None:
    evil = "<script>alert('x')</script> & friends"
    message = compose(replace(digest, items=(line(9, evil),)), FROM, now=SENT_AT)
    html = html_part(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; friends" in html
    assert evil in text_part(message)


def test_more_than_three_authors_are_shortened_to_et_al(message: EmailMessage) -> None:
    shown = "T. Brown, B. Mann et al."
    assert shown in text_part(message)
    assert shown in html_part(message)
    assert "Ryder" not in text_part(message)


@pytest.mark.parametrize(
    ("authors", "shown"),
    [
        ((), ""),
        (("Plato",), "Plato"),
        (("Ada Lovelace", "Alan Turing"), "A. Lovelace, A. Turing"),
        (("Ada Lovelace", "Alan Turing", "Grace Hopper"), "A. Lovelace, A. Turing et al."),
        (("Lovelace, Ada", "Jean-Pierre Serre"), "A. Lovelace, J.-P. Serre"),
        (("Adrian Del Maestro", "Ludwig van Beethoven"), "A. Del Maestro, L. van Beethoven"),
        (("Alan Mathison Turing",), "A. M. Turing"),
    ],
)
def test_short_authors(authors: tuple[str, ...], shown: str) -> None:
    assert short_authors(authors) == shown


def test_an_absurdly_long_title_and_reason_are_cut_with_an_ellipsis(digest: DigestEmail) -> None:
    long_line = replace(line(5, "word " * 2000), reason="because " * 2000)
    message = compose(replace(digest, items=(long_line,)), FROM, now=SENT_AT)
    text = text_part(message)
    title = next(row for row in text.splitlines() if row.startswith("1. "))[3:]
    assert len(title) <= 300
    assert title.endswith("\u2026")
    assert "because " * 40 not in text


def test_a_title_with_line_breaks_is_flattened(digest: DigestEmail) -> None:
    message = compose(replace(digest, items=(line(5, "Deep\n   Learning"),)), FROM, now=SENT_AT)
    assert "1. Deep Learning\n" in text_part(message)


def test_a_message_over_the_size_limit_is_refused_naming_the_digest(digest: DigestEmail) -> None:
    long_url = "https://paperboy.example/c/" + "x" * 2000
    items = tuple(replace(line(i, f"Paper {i}"), click_url=long_url) for i in range(40))
    with pytest.raises(ValueError, match=r"digest 42: .* over the 100000-byte limit"):
        compose(replace(digest, items=items), FROM, now=SENT_AT)


def _signed_digest(digest: DigestEmail, count: int) -> DigestEmail:
    """``digest`` with ``count`` papers whose links are real signed ones (~190 characters)."""
    links = LinkMaker("s" * 43, "https://paperboy.example.org", SENT_AT + timedelta(days=60))
    user, digest_id = 123456, 12345678
    authors = ("First Author", "Second Author", "Third Author", "Fourth Author")
    title = "A fairly typical paper title about retrieval-augmented language models for science"
    items = tuple(
        replace(
            line(i, title, authors),
            reason="Similar to \u201cAttention Is All You Need\u201d, which you read",
            click_url=links.click(user, 1_234_000 + i, digest_id),
            more_url=links.more(user, 1_234_000 + i, digest_id),
            less_url=links.less(user, 1_234_000 + i, digest_id),
        )
        for i in range(count)
    )
    return replace(
        digest,
        items=items,
        unsubscribe_url=links.unsubscribe(user, SENT_AT),
        preferences_url=links.preferences(user, SENT_AT),
    )


def test_a_fifty_paper_digest_with_real_signed_links_fits_the_limit(
    digest: DigestEmail,
) -> None:
    big = _signed_digest(digest, 50)
    assert len(big.items[0].click_url) > 180
    message = compose(big, FROM, now=SENT_AT)
    assert len(message.as_bytes()) < MAX_MESSAGE_BYTES  # 86 kB when measured


def test_the_first_ten_entries_are_full_and_the_rest_compact(digest: DigestEmail) -> None:
    big = _signed_digest(digest, 12)
    message = compose(big, FROM, now=SENT_AT)
    tenth, eleventh = big.items[9], big.items[10]
    for part in (text_part(message), html_part(message)):
        assert tenth.more_url in part and tenth.less_url in part
        assert eleventh.more_url not in part and eleventh.less_url not in part
        assert eleventh.click_url in part and f"{eleventh.pdf_url}" in part
        assert part.count("We propose a new architecture") == 10


def test_each_paper_shows_summary_identifier_categories_date_and_pdf(
    message: EmailMessage,
) -> None:
    summary = (
        "We propose a new architecture, based solely on attention, that dispenses with "
        "recurrence entirely. Experiments on two translation tasks show it achieves better "
        "quality while training much faster."
    )
    for part in (text_part(message), html_part(message)):
        assert part.count(summary) == 3
        assert "arXiv:2611.00003 \u00b7 cs.LG, cs.CL \u00b7 20 Nov 2026" in part
        assert "Sequence models have long relied on recurrence" not in part
    assert "   PDF: https://arxiv.org/pdf/2611.00002\n" in text_part(message)
    assert '<a href="https://arxiv.org/pdf/2611.00002" style="color:#1d4ed8">PDF</a>' in (
        html_part(message)
    )
    assert "   Abstract: https://paperboy.example/c/2?t=tok2&d=42\n" in text_part(message)


def test_a_doi_stands_in_for_a_missing_arxiv_id_and_many_categories_are_counted(
    digest: DigestEmail,
) -> None:
    paper = replace(
        line(1, "Helium films"),
        arxiv_id=None,
        doi="10.1103/PhysRevB.1",
        categories=("a", "b", "c", "d", "e", "f"),
        published=None,
    )
    message = compose(replace(digest, items=(paper,)), FROM, now=SENT_AT)
    assert "   doi:10.1103/PhysRevB.1 \u00b7 a, b, c, d +2\n" in text_part(message)


def test_a_pdf_link_that_is_not_http_is_left_out(digest: DigestEmail) -> None:
    paper = replace(line(1, "Odd feed"), pdf_url="javascript:alert(1)")
    message = compose(replace(digest, items=(paper,)), FROM, now=SENT_AT)
    assert "javascript" not in html_part(message) and "PDF" not in text_part(message)


def test_the_header_line_counts_the_candidates(message: EmailMessage) -> None:
    line = "Hi Ada Lovelace. We read 27 new papers for you; here are the 3 closest."
    assert line in text_part(message)
    assert line in html_part(message)


def test_without_a_candidate_count_the_header_line_is_the_plain_intro(
    digest: DigestEmail,
) -> None:
    message = compose(replace(digest, candidates=None), FROM, now=SENT_AT)
    assert "Hi Ada Lovelace, here are the 3 papers we picked for you." in text_part(message)
    assert "We read" not in html_part(message)


def test_a_thin_day_says_how_many_papers_cleared_the_bar(digest: DigestEmail) -> None:
    message = compose(replace(digest, requested=10), FROM, now=SENT_AT)
    sentence = "Only 3 new papers cleared your bar today."
    assert sentence in text_part(message)
    assert sentence in html_part(message)


def test_a_full_digest_says_nothing_about_the_bar(digest: DigestEmail) -> None:
    message = compose(replace(digest, requested=3), FROM, now=SENT_AT)
    assert "cleared your bar" not in text_part(message)
    assert "cleared your bar" not in html_part(message)


def test_the_thin_day_sentence_counts_one_paper_in_the_singular() -> None:
    assert thin_day_line(1, 10) == "Only 1 new paper cleared your bar today."
    assert thin_day_line(10, 10) == thin_day_line(4, None) == ""


def test_it_sets_a_list_id_named_after_the_sender_domain(message: EmailMessage) -> None:
    assert message["List-Id"] == "Paperboy digests <digest.paperboy.example>"


@pytest.mark.parametrize(
    ("count", "period", "subject"),
    [
        (10, "2026-11-21", "Today: Attention Is All You Need and 9 more"),
        (1, "2026-11-21", "Today: Attention Is All You Need"),
        (5, "2026-W47", "This week: Attention Is All You Need and 4 more"),
    ],
)
def test_the_subject_names_the_top_paper(count: int, period: str, subject: str) -> None:
    assert subject_line("Attention Is All You Need", count, period) == subject


def test_a_long_top_title_is_cut_so_the_count_survives() -> None:
    subject = subject_line("Scaling laws for " + "very " * 40 + "large models", 10, "2026-11-21")
    assert len(subject) <= MAX_SUBJECT_CHARS
    assert subject.startswith("Today: Scaling laws for very")
    assert subject.endswith("very\u2026 and 9 more")


def test_an_empty_digest_is_refused(digest: DigestEmail) -> None:
    with pytest.raises(ValueError, match="digest 42: has no items"):
        compose(replace(digest, items=()), FROM)


def test_a_non_http_link_is_refused_naming_the_field(digest: DigestEmail) -> None:
    bad = replace(line(1, "T"), more_url="javascript:alert(1)")
    with pytest.raises(ValueError, match=r"digest 42: items\[0\]\.more_url must be an http"):
        compose(replace(digest, items=(bad,)), FROM)


def test_a_sender_without_a_domain_is_refused(digest: DigestEmail) -> None:
    with pytest.raises(ValueError, match="from_email"):
        compose(digest, "Paperboy <nobody>")


def test_non_ascii_content_survives_a_bytes_round_trip(digest: DigestEmail) -> None:
    accented = replace(line(1, "Réseaux de neurones — étude"), authors=("Émilie Du Châtelet",))
    message = compose(replace(digest, items=(accented,), to_name="Zoë"), FROM, now=SENT_AT)
    raw = message.as_bytes()
    assert max(raw) < 128  # 7-bit clean: safe for relays without 8BITMIME
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    assert "Réseaux de neurones — étude" in html_part(parsed)
    assert "É. Du Châtelet" in text_part(parsed)
    assert parsed["To"] == "Zoë <ada@example.org>"
