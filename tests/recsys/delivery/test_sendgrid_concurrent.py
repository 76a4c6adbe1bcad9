"""SendGrid rendered mode, many digests at once: the payload without MIME, and send_many."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from recsys.delivery.backends import (
    DeliveryError,
    SendGridBackend,
    SendResult,
    rendered_payload,
    sendgrid_payload,
)
from recsys.delivery.compose import DigestEmail, compose
from recsys.testing.samples import FROM, ada_digest
from recsys.testing.sendgrid import SendGridStandIn

CATEGORIES = ("digest",)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"to_name": None},
        {"to_name": "Zoë O'Brien-Li"},
        {"to_name": "J. Smith"},  # a dot: quoted in the header
        {"to_name": 'Ödön "Q" von, Jr.'},
        {"to_email": "a.b+c@ex-ample.org"},
        {"to_email": '"odd name"@example.org'},
        {"subject": "Ünïcode — subject ✓"},
        {"subject": "Looks encoded =?utf-8?q?x?= but is not"},
        {"period_label": "2026-W47"},
    ],
)
def test_the_payload_built_without_mime_equals_the_one_from_the_composed_message(
    change: dict[str, object],
) -> None:
    digest = replace(ada_digest(), **change)  # type: ignore[arg-type]
    expected = sendgrid_payload(compose(digest, FROM), digest.digest_id, CATEGORIES)
    assert rendered_payload(digest, FROM, CATEGORIES) == expected


def _long_digest(n_items: int, title_chars: int, ascii_first: int) -> DigestEmail:
    """Long non-ASCII titles, after ``ascii_first`` ASCII ones (MIME picks quoted-printable
    or base64 from a part's first lines only)."""
    base = ada_digest()
    item = base.items[0]
    items = tuple(
        replace(item, paper_id=i, title=("AÜ"[i >= ascii_first] * title_chars) + str(i))
        for i in range(n_items)
    )
    return replace(base, items=items)


def _no_size(error: str) -> str:
    # The Message-ID's random part moves the size by a byte or two from one compose to the next.
    return re.sub(r"is \d+ bytes", "is N bytes", error)


def test_a_message_near_the_size_limit_is_measured_as_compose_measures_it() -> None:
    # Non-ASCII titles are base64 in MIME: the JSON strings are smaller than the message.
    answers = []
    cases = [(n, ascii_first) for n in range(10, 42, 4) for ascii_first in (0, 6)]
    for n_items, ascii_first in cases:
        digest = _long_digest(n_items, 280, ascii_first)
        try:
            expected: object = sendgrid_payload(compose(digest, FROM), 42, CATEGORIES)
        except ValueError as exc:
            expected = _no_size(str(exc))
        try:
            got: object = rendered_payload(digest, FROM, CATEGORIES)
        except ValueError as exc:
            got = _no_size(str(exc))
        assert got == expected
        answers.append(type(got))
    assert answers.count(dict) >= 4 and answers.count(str) >= 4  # both sides of the limit


def test_a_digest_compose_refuses_is_a_permanent_failure_and_the_rest_still_go() -> None:
    good = ada_digest()
    bad = replace(good, digest_id=2, to_email="not-an-address")
    with SendGridStandIn() as sg:
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=5.0, concurrency=2)
        results = backend.send_many([good, bad], FROM)
        backend.close()
    assert isinstance(results[0], SendResult)
    assert isinstance(results[1], DeliveryError)
    assert not results[1].transient and not results[1].unknown
    assert "digest 2" in results[1].message
    assert sg.accepted_digest_ids == [good.digest_id]


def _digests(n: int) -> list[DigestEmail]:
    base = ada_digest()
    return [replace(base, digest_id=i, to_email=f"reader{i}@example.org") for i in range(1, n + 1)]


def _kind(result: SendResult | DeliveryError | None) -> str:
    if result is None:
        return "not sent"
    if isinstance(result, SendResult):
        return "sent"
    return "unknown" if result.unknown else "transient" if result.transient else "permanent"


def test_each_digest_is_accepted_at_most_once_under_failures_and_hangs() -> None:
    """Resend what is safe to resend (transient, never started) until nothing is left;
    what the provider accepted is never sent again, whatever went wrong around it."""
    digests = {d.digest_id: d for d in _digests(120)}
    outcomes: dict[int, str] = {}
    with SendGridStandIn(
        failure_rate=0.2, hang_rate=0.03, stall_rate=0.03, hold_s=0.6, seed=3
    ) as sg:
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=0.3, concurrency=6)
        pending = sorted(digests)
        for _ in range(100):
            if not pending:
                break
            results = backend.send_many([digests[i] for i in pending], FROM)
            outcomes |= {i: _kind(r) for i, r in zip(pending, results, strict=True)}
            pending = [i for i in pending if outcomes[i] in ("transient", "not sent")]
        backend.close()
        accepted = Counter(sg.accepted_digest_ids)
        requests = sg.attempts

    assert not pending
    assert max(accepted.values()) == 1  # nothing accepted twice
    kinds = Counter(outcomes.values())
    assert set(kinds) <= {"sent", "unknown"} and kinds["unknown"] > 0
    sent = {i for i, k in outcomes.items() if k == "sent"}
    unknown = {i for i, k in outcomes.items() if k == "unknown"}
    assert sent <= set(accepted)  # a 202 always means accepted
    # A hang is accepted, a stall is not: only an unknown digest may be missing.
    assert set(digests) - set(accepted) <= unknown
    assert requests > len(digests)  # the injected 429/5xx were retried


def test_after_an_unknown_outcome_no_further_request_starts() -> None:
    digests = _digests(10)
    with SendGridStandIn(hang_s=1.0) as sg:
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=0.2, concurrency=3)
        results = backend.send_many(digests, FROM)
        backend.close()
        requests = sg.attempts
    kinds = [_kind(r) for r in results]
    # The first requests were in flight together; once one timed out, no other started.
    assert 1 <= requests <= 3
    assert kinds.count("unknown") == requests
    assert kinds.count("not sent") == len(digests) - requests


def test_failure_classes_are_those_of_one_request_at_a_time() -> None:
    digests = _digests(4)
    with SendGridStandIn() as sg:
        for status in (429, 503, 400):
            sg.fail_next(status, retry_after=7 if status == 429 else None)
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=5.0, concurrency=4)
        results = backend.send_many(digests, FROM)
        backend.close()
    errors = [r for r in results if isinstance(r, DeliveryError)]
    assert sorted(_kind(r) for r in results) == ["permanent", "sent", "transient", "transient"]
    assert sorted(e.retry_after_s or 0 for e in errors if e.transient) == [0, 7.0]
    assert all(e.message.startswith("sendgrid, digest ") for e in errors)


def test_concurrency_outside_1_to_64_is_refused() -> None:
    for bad in (0, 65):
        with pytest.raises(ValueError, match="concurrency"):
            SendGridBackend("SG.key", "http://127.0.0.1:9", 1.0, concurrency=bad)
