"""The HTML pages a subscriber sees: link answers, sign-up, confirmation, preferences.

Every value is autoescaped: paper titles come from outside feeds and must not inject markup.
The templates are files in ``api/templates/``, shipped as package data like the e-mail ones.
Pages work without JavaScript: plain forms that POST, and a redirect back after each change.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

# Links carry tokens in their path: keep pages out of caches and tokens out of Referer headers.
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_env = Environment(loader=PackageLoader("api", "templates"), autoescape=True)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def web_url(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None.

    Papers come from outside feeds: a ``javascript:`` or ``data:`` URL that reached the
    database must not become a live link on a page whose address holds an account token.
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


_env.filters["web_url"] = web_url


# The page layouts: each one's only inline content is its style block.
LAYOUTS = ("base.html", "admin_base.html")


def style_hashes() -> list[str]:
    """The CSP hashes of the inline style blocks in the page layouts (:data:`LAYOUTS`).

    Hashing them here, from the files the pages are rendered from, keeps the policy right
    whenever a stylesheet changes.
    """
    blocks = []
    for layout in LAYOUTS:
        source, _, _ = _env.loader.get_source(_env, layout)  # type: ignore[union-attr]
        blocks += _STYLE.findall(source)
    return [base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks]


class PageError(Exception):
    """An error answered with a small HTML page instead of a JSON body."""

    def __init__(
        self,
        status_code: int,
        heading: str,
        message: str,
        headers: dict[str, str] | None = None,
        link: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.heading = heading
        self.message = message
        self.headers = headers or {}
        self.link = link


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render one of the page templates as a response."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def message_page(
    heading: str, message: str, status_code: int = 200, *, link: tuple[str, str] | None = None
) -> HTMLResponse:
    """A heading, a sentence and optionally one ``(url, text)`` link."""
    link_url, link_text = link or ("", "")
    return render(
        "message.html", status_code, heading=heading, message=message,
        link_url=link_url, link_text=link_text,
    )  # fmt: skip


def unsubscribe_page(email: str) -> HTMLResponse:
    return render("unsubscribe.html", heading="Unsubscribe", email=email)


def page_error_handler(_request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler that turns a ``PageError`` into its page."""
    assert isinstance(exc, PageError)
    response = message_page(exc.heading, exc.message, exc.status_code, link=exc.link)
    response.headers.update(exc.headers)
    return response


class FormInvalid(Exception):
    """A form shown again with what was wrong (422). Raised, so the request's database work
    is rolled back: a form is applied whole or not at all. Rendered when raised, while the
    rows the page shows are still loaded."""

    def __init__(self, template: str, context: dict[str, Any]) -> None:
        super().__init__(context.get("error") or "invalid form")
        self.response = render(template, status.HTTP_422_UNPROCESSABLE_CONTENT, **context)


def form_invalid_handler(_request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler answering a ``FormInvalid`` with its page."""
    assert isinstance(exc, FormInvalid)
    return exc.response
