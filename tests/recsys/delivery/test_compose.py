"""Composing a digest e-mail: structure, headers, content, escaping and limits."""

from __future__ import annotations

import re
from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from recsys.delivery.compose import (
    MAX_MESSAGE_BYTES,
    DigestEmail,
    compose,
    html_part,
    short_authors,
    text_part,
)
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
    shown = "Tom Brown, Ben Mann, Nick Ryder et al."
    assert shown in text_part(message)
    assert shown in html_part(message)
    assert "Jared Kaplan" not in text_part(message)


@pytest.mark.parametrize(
    ("authors", "shown"),
    [
        ((), ""),
        (("A",), "A"),
        (("A", "B", "C"), "A, B, C"),
        (("A", "B", "C", "D"), "A, B, C et al."),
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


def test_a_fifty_paper_digest_with_long_signed_links_fits_the_limit(
    digest: DigestEmail,
) -> None:
    token = "t" * 90  # about the length of a signed link token
    authors = ("First Author", "Second Author", "Third Author", "Fourth Author")
    title = "A fairly typical paper title about retrieval-augmented language models"
    items = tuple(
        replace(
            line(i, title, authors),
            click_url=f"https://paperboy.example/c/{i}?t={token}",
            more_url=f"https://paperboy.example/f/{i}/more?t={token}",
            less_url=f"https://paperboy.example/f/{i}/less?t={token}",
        )
        for i in range(50)
    )
    message = compose(replace(digest, items=items), FROM, now=SENT_AT)
    assert len(message.as_bytes()) < MAX_MESSAGE_BYTES


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
    assert "Émilie Du Châtelet" in text_part(parsed)
    assert parsed["To"] == "Zoë <ada@example.org>"
