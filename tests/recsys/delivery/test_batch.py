"""The SendGrid dynamic template says what the rendered mode says, from the same digest.

Both modes read the view :func:`~recsys.delivery.batch.template_data` builds; here the
Handlebars files are rendered with pybars3 (a Python Handlebars) and compared with the
message :func:`~recsys.delivery.compose.compose` renders with Jinja, so a field added to
one set of templates and not the other fails.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest
from pybars import Compiler

from recsys.delivery.batch import template_data, template_payload, template_version
from recsys.delivery.compose import DigestEmail, compose, html_part, text_part
from recsys.testing.samples import FROM, SENT_AT, ada_digest, line


def _render(source: str, data: dict[str, Any]) -> str:
    return str(Compiler().compile(source)(data))


def _lines(text: str) -> list[str]:
    # The two engines differ only in which blank lines a block tag leaves behind.
    return [row.rstrip() for row in text.splitlines() if row.strip()]


def _flat_html(markup: str) -> str:
    # Handlebars writes "=" as "&#x3D;" and "'" as "&#x27;", Jinja "'" as "&#39;": the same
    # characters to a mail client. Whitespace between tags is likewise not shown.
    return " ".join(html.unescape(re.sub(r">\s+<", "><", markup)).split())


def _digests() -> list[DigestEmail]:
    ada = ada_digest()
    twelve = tuple(line(i, f"Paper {i}") for i in range(1, 13))  # full and compact entries
    return [
        ada,
        replace(ada, to_name=None, candidates=None, preferences_url=None),
        replace(ada, items=twelve, candidates=12),
        replace(ada, items=(replace(line(1, "Tom & Jerry's <b>cats</b>"), pdf_url=None),)),
        replace(ada, requested=10),  # a thin day: the sentence saying so
    ]


@pytest.fixture(params=range(len(_digests())))
def digest(request: pytest.FixtureRequest) -> DigestEmail:
    return _digests()[request.param]


@pytest.fixture()
def rendered(digest: DigestEmail) -> EmailMessage:
    return compose(digest, FROM, now=SENT_AT)


def test_the_template_text_part_matches_the_rendered_one(
    digest: DigestEmail, rendered: EmailMessage
) -> None:
    text = _render(template_version()["plain_content"], template_data(digest))
    assert _lines(text) == _lines(text_part(rendered))


def test_the_template_html_part_matches_the_rendered_one(
    digest: DigestEmail, rendered: EmailMessage
) -> None:
    markup = _render(template_version()["html_content"], template_data(digest))
    assert _flat_html(markup) == _flat_html(html_part(rendered))


def test_the_template_subject_matches_the_rendered_one(
    digest: DigestEmail, rendered: EmailMessage
) -> None:
    subject = _render(template_version()["subject"], template_data(digest))
    assert subject.rstrip("\n") == rendered["Subject"]  # the file ends in a newline


def test_the_comparison_would_see_a_field_missing_from_one_side() -> None:
    digest = ada_digest()
    data = template_data(digest)
    for item in data["items"]:
        item["summary"] = ""
    text = _render(template_version()["plain_content"], data)
    assert _lines(text) != _lines(text_part(compose(digest, FROM, now=SENT_AT)))


def test_the_template_request_carries_the_list_id() -> None:
    payload = template_payload([ada_digest()], template_id="d-1", from_email=FROM)
    assert payload["headers"] == {"List-Id": "Paperboy digests <digest.paperboy.example>"}
