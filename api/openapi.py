"""What the OpenAPI description says each operation may answer, in one place.

Routes name the kinds of answer they give (``responses=`` built from the pieces here) instead
of writing status codes, bodies and headers by hand, so the description stays true as routes
change; ``tests/api/test_schemathesis.py`` holds the app to it with every schemathesis check.
The one answer no route writes itself, Starlette's 405, is fixed here too: its ``Allow``
header listed only the methods of the first route matching the path, not all of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

Responses = dict[int | str, dict[str, Any]]

# FastAPI's error body: {"detail": "..."}.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
}
PAGE_SCHEMA = {"type": "string", "description": "A small HTML page saying what happened."}


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


RETRY_AFTER = {"Retry-After": _header("Seconds to wait.", {"type": "integer", "minimum": 1})}
LOCATION = {"Location": _header("Where to go next.", {"type": "string", "minLength": 1})}
WWW_AUTHENTICATE = {"WWW-Authenticate": _header("The scheme to use.", {"const": "Bearer"})}


def json_error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON ``{"detail": ...}`` answer."""
    answer = {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return {**answer, "headers": headers} if headers else answer


def html_page(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An HTML page answer (:mod:`api.pages`)."""
    answer = {"description": description, "content": {"text/html": {"schema": PAGE_SCHEMA}}}
    return {**answer, "headers": headers} if headers else answer


def redirect(description: str) -> dict[str, Any]:
    """A 303 with ``Location`` and no body worth reading."""
    return {"description": description, "headers": LOCATION, "content": {}}


def invalid_json(description: str) -> dict[str, Any]:
    """FastAPI's own 422 body, a list of errors each naming its field (``loc``)."""
    schema = {"$ref": "#/components/schemas/HTTPValidationError"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# The answers shared by families of routes ---------------------------------------------------

TOO_LARGE: Responses = {413: json_error("The body is larger than this route reads.")}

# Signed links people click: a bad link or a gone subscription is a page.
LINK_PAGES: Responses = {
    400: html_page("The link is malformed, tampered with, expired or misused."),
    404: html_page("The link's paper or subscriber is gone."),
}

# HTML forms (api.forms): what the body reader refuses before the route runs.
FORM_PAGES: Responses = {
    400: html_page("The form could not be read (not UTF-8, too many fields, wrong shapes)."),
    413: json_error("The form is larger than this route reads."),
    415: html_page("The body is not application/x-www-form-urlencoded."),
}
FORM_INVALID: Responses = {422: html_page("A field is invalid; the form is shown again naming it.")}
FOREIGN_POST: Responses = {403: html_page("The form was posted from another site.")}
BUSY_PAGE: Responses = {
    429: html_page("Too many posts from this client address; see Retry-After.", RETRY_AFTER)
}
BUSY_JSON: Responses = {
    429: json_error("Too many posts from this client address; see Retry-After.", RETRY_AFTER)
}

# The operator's page: a POST needs a live session cookie and its CSRF token.
ADMIN_PAGE_POST: Responses = {
    **FORM_PAGES,
    303: redirect("Back to the admin page, with a notice."),
    401: html_page("No live admin session: the page links to the login."),
    403: html_page("The CSRF token is stale or the form came from another site."),
    503: html_page("The admin page is off: PAPERBOY_ADMIN_API_KEY is not set."),
}

# The operator's JSON API (X-API-Key).
ADMIN_KEY: Responses = {
    401: json_error("Missing or wrong X-API-Key header."),
    503: json_error("The admin API is off: PAPERBOY_ADMIN_API_KEY is not set."),
}

# The subscriber's JSON API (their preferences token as a bearer token).
BEARER: Responses = {
    401: json_error("Missing, invalid or expired preferences token.", WWW_AUTHENTICATE),
    404: json_error("The subscription is gone."),
}


# 405 ------------------------------------------------------------------------------------------


# The methods a route can serve; OPTIONS is served by none.
METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def methods_of(request: Request) -> list[str]:
    """Every method some route serves at the request's path, in a stable order."""
    # Asked of the router as a request with each method would be, because FastAPI keeps
    # included routers as routes of their own: their paths are not all on the app.
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's own handler, with a 405's ``Allow`` naming every method of the path.

    Starlette answers 405 from the first route whose path matches, so ``/users`` (GET and
    POST routes) told an OPTIONS request ``Allow: POST``, which RFC 9110 makes a false
    statement about the resource.
    """
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        headers = {**(exc.headers or {}), "Allow": ", ".join(methods_of(request))}
        exc = StarletteHTTPException(405, exc.detail, headers=headers)
    return await http_exception_handler(request, exc)


# The document ---------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the description with :func:`finish` applied, once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(spec: dict[str, Any]) -> dict[str, Any]:
    """Add what FastAPI leaves out of every operation's answers.

    A redirect got the route's content type (a 303 from an HTML route claimed a
    ``text/html`` body it does not have), a JSON body that is not JSON is FastAPI's own
    400, which no route declares, and :data:`REQUIRED_HEADERS` are required.
    """
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            answers = operation.get("responses", {})
            for answer in answers.values():
                if "Location" in answer.get("headers", {}):
                    answer.pop("content", None)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                answers.setdefault("400", NOT_JSON)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"] in REQUIRED_HEADERS:
                    parameter["required"] = True
    return spec


# Headers a request must carry although its route reads them as optional, so that a missing
# one gets the route's own answer (the webhook's 403 for a missing signature, as for a wrong
# one) rather than FastAPI's 422.
REQUIRED_HEADERS = frozenset(
    {"X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"}
)


NOT_JSON = json_error("The body is not JSON.")
