"""Exactly one accepted digest per due user, whatever fails on the way.

Each test injects one kind of fault into a run of 100 users and then checks the same
invariant (:func:`assert_exactly_once`): every user has one digest, SendGrid accepted each
digest exactly once, and the database agrees with what SendGrid received.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.conftest import N_USERS, Rig, assert_exactly_once, attempt_outcomes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_a_sendgrid_failing_a_share_of_requests_still_delivers_each_digest_once(
    make_rig: Callable[..., Rig],
) -> None:
    # A 20% mix of 429/500/503, plus requests that SendGrid takes but whose reply never
    # comes (hang: the digest goes "unknown" and the webhook proves it sent) and requests
    # it never takes (stall: "unknown" until the event stream shows nothing came of it).
    rig = make_rig(
        failure_rate=0.2, hang_rate=0.05, stall_rate=0.05, hold_s=1.5,
        faulty_requests=N_USERS, duplicate_event_rate=0.1,
    )  # fmt: skip
    with rig.workers():
        rig.wait_settled()
    assert_exactly_once(rig)
    outcomes = attempt_outcomes(rig)
    assert outcomes["unknown"] > 0 and outcomes["transient"] > 0  # the faults really happened


def test_template_mode_batches_survive_the_same_faults(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(
        {"sendgrid_mode": "template", "sendgrid_template_id": "d-faults", "score_chunk_size": 5},
        failure_rate=0.2, hang_rate=0.15, stall_rate=0.15, hold_s=1.5, faulty_requests=15,
    )  # fmt: skip
    with rig.workers():
        rig.wait_settled()
    assert_exactly_once(rig)
    outcomes = attempt_outcomes(rig)
    assert outcomes["unknown"] > 0 and outcomes["transient"] > 0  # the faults really happened
    assert len(rig.standin.accepted) < N_USERS  # batches, not one request per digest


def test_killing_the_worker_mid_run_loses_and_duplicates_nothing(
    make_rig: Callable[..., Rig],
) -> None:
    # Slow replies make it likely that sends are in flight when the worker dies.
    rig = make_rig(hang_rate=0.3, hold_s=0.3)
    with rig.workers() as runtime:
        rig.wait_until(lambda: rig.sent() >= N_USERS // 3, "a third sent", 60)
        runtime.kill_worker()
        runtime.start_worker()
        rig.wait_settled()
    assert_exactly_once(rig)


def test_restarting_redis_mid_run_loses_and_duplicates_nothing(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(hang_rate=0.3, hold_s=0.3)
    with rig.workers():
        rig.wait_until(lambda: rig.sent() >= N_USERS // 3, "a third sent", 60)
        rig.redis.restart(down_s=1.0)  # no persistence: every queued task is gone
        rig.wait_settled()
    assert_exactly_once(rig)
