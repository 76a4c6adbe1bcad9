"""The few HTML pages a subscriber sees after clicking a link in a digest.

Every value is autoescaped: paper titles come from outside feeds and must not inject markup.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import DictLoader, Environment

# Links carry tokens in their path: keep pages out of caches and tokens out of Referer headers.
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ heading }} - Paperboy</title>
</head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; \
padding: 0 1rem; line-height: 1.5">
<h1>{{ heading }}</h1>
{% block body %}{% endblock %}
</body>
</html>
""",
    "message.html": """{% extends "base.html" %}{% block body %}
<p>{{ message }}</p>
{% endblock %}""",
    "unsubscribe.html": """{% extends "base.html" %}{% block body %}
<p>Stop sending Paperboy digests to <strong>{{ email }}</strong>?</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
{% endblock %}""",
}

_env = Environment(loader=DictLoader(_TEMPLATES), autoescape=True)


class PageError(Exception):
    """An error answered with a small HTML page instead of a JSON body."""

    def __init__(self, status_code: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.heading = heading
        self.message = message


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render one of the page templates as a response."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def message_page(heading: str, message: str, status_code: int = 200) -> HTMLResponse:
    return render("message.html", status_code, heading=heading, message=message)


def unsubscribe_page(email: str) -> HTMLResponse:
    return render("unsubscribe.html", heading="Unsubscribe", email=email)


def page_error_handler(_request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler that turns a ``PageError`` into its page."""
    assert isinstance(exc, PageError)
    return message_page(exc.heading, exc.message, exc.status_code)
