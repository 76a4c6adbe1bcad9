"""``/docs``: the API's operations as a plain page, without FastAPI's CDN-hosted Swagger UI.

Swagger UI and ReDoc load their script from a third-party CDN, so whoever controls that CDN
(or a copy of it) could run script on this site. This page is rendered here from the same
OpenAPI description (``/openapi.json``, which tools should read) and needs no script.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.pages import render

router = APIRouter(include_in_schema=False)

HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete")


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """List every operation of the API with its summary."""
    spec = request.app.openapi()
    return render("docs.html", heading=f"{spec['info']['title']} API", operations=operations(spec))


def operations(spec: dict[str, Any]) -> list[dict[str, str]]:
    """One row per operation of an OpenAPI document: method, path, summary, description."""
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                op = item[method]
                summary = op.get("summary", "")
                rows.append(
                    {"method": method.upper(), "path": path, "summary": summary,
                     "description": op.get("description", "")}
                )  # fmt: skip
    return rows
