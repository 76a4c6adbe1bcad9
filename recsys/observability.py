"""What the database knows about the service's health, read cheaply for ``/metrics``.

Workers run as prefork pools on many machines, so counters kept in their memory would need
a scrape target per pool process (or a shared multiprocess folder on every host). Every fact
an operator asks about is already a row, written by the worker that did the work: a digest's
status, each delivery attempt (before it is made, closed with its outcome), each click and
feedback event, each provider event, each source's last harvest. Reading them at scrape time
gives one scrape target (the API), totals that survive restarts, and no double counting when
a task is redelivered. Each function is one grouped query; see docs/operations.md for costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recsys.db.models import DeliveryAttemptRow, DigestRow, EventRow, ProviderEventRow

# Provider latency is read from the most recent attempts only: a bounded, primary-key-ordered
# read however long the table grows.
LATENCY_SAMPLE = 1000
LATENCY_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Latency:
    """Seconds from recording an attempt to recording its outcome, over recent attempts."""

    count: int
    quantiles: dict[float, float]


def digests_by_status(session: Session) -> dict[str, int]:
    """How many digest rows are in each status (``ix_digests_status`` answers it)."""
    rows = session.execute(select(DigestRow.status, func.count()).group_by(DigestRow.status))
    return {status: n for status, n in rows}


def attempts_by_outcome(session: Session) -> dict[tuple[str, str], int]:
    """Delivery attempts per (backend, outcome); an attempt still open is ``pending``."""
    outcome = func.coalesce(DeliveryAttemptRow.outcome, "pending")
    rows = session.execute(
        select(DeliveryAttemptRow.backend, outcome, func.count()).group_by(
            DeliveryAttemptRow.backend, outcome
        )
    )
    return {(backend, kind): n for backend, kind, n in rows}


def provider_latency(session: Session, sample: int = LATENCY_SAMPLE) -> dict[str, Latency]:
    """Per backend, quantiles of the last ``sample`` closed attempts' durations.

    An attempt is recorded just before the backend call and closed just after, so this is the
    provider's answer time (plus two small writes). The rare attempt closed later by the
    sweep or a webhook event counts its whole wait.
    """
    rows = session.execute(
        select(
            DeliveryAttemptRow.backend,
            DeliveryAttemptRow.started_at,
            DeliveryAttemptRow.finished_at,
        )
        .where(DeliveryAttemptRow.finished_at.is_not(None))
        .order_by(DeliveryAttemptRow.id.desc())
        .limit(sample)
    )
    durations: dict[str, list[float]] = {}
    for backend, started, finished in rows:
        assert finished is not None  # the query's own condition
        durations.setdefault(backend, []).append((finished - started).total_seconds())
    return {backend: _latency(values) for backend, values in durations.items()}


def _latency(values: list[float]) -> Latency:
    ordered = sorted(values)
    # Nearest rank: the smallest value with at least q of the sample at or below it.
    picked = {q: ordered[max(0, math.ceil(q * len(ordered)) - 1)] for q in LATENCY_QUANTILES}
    return Latency(len(ordered), picked)


def events_by_kind(session: Session) -> dict[tuple[str, bool], int]:
    """Clicks and feedback per (kind, suspect): suspect clicks are link scanners."""
    rows = session.execute(
        select(EventRow.kind, EventRow.suspect, func.count()).group_by(
            EventRow.kind, EventRow.suspect
        )
    )
    return {(kind, bool(suspect)): n for kind, suspect, n in rows}


def provider_events_by_kind(session: Session) -> dict[str, int]:
    """Provider-reported events (delivered, bounce, spamreport, ...) per kind."""
    rows = session.execute(
        select(ProviderEventRow.kind, func.count()).group_by(ProviderEventRow.kind)
    )
    return {kind: n for kind, n in rows}
