"""``/metrics`` for Prometheus: no key needed, as it holds counts and versions, no person.

Each scrape runs a handful of grouped queries (0.3-0.4 s on 100,000 digests), so an answer
is reused for ``CACHE_S`` seconds: a flood of requests costs one scrape's queries every few
seconds, never one per request. Prometheus scrapes every 15 s or more, so it sees no staleness.
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])
CACHE_S = 5.0
_lock = threading.Lock()


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Digests by status, e-mail outcomes and provider latency, clicks, harvests, model, queue."""
    return Response(_body(request), media_type=CONTENT_TYPE_LATEST)


def _body(request: Request) -> bytes:
    state = request.app.state
    with _lock:  # one scrape at a time; the others wait for its answer
        when, body = getattr(state, "metrics_cache", (-CACHE_S, b""))
        if time.monotonic() - when >= CACHE_S:
            body = generate_latest(state.metrics)
            state.metrics_cache = (time.monotonic(), body)
        return body
