"""Recovery with the default settings: a fault at the end of a run, when no later traffic
helps, still ends with every digest delivered exactly once within two minutes.

The recovery settings (sweep interval, lease, grace, stale delay, SendGrid timeout) are left
at their defaults here, unlike the other fault tests, so the times measured are those of an
installation. Each test prints its recovery time (``pytest -s`` shows it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from recsys.settings import Settings
from tests.faults.conftest import N_USERS, Rig, assert_exactly_once, attempt_outcomes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

RECOVERY_BUDGET_S = 120.0
_RECOVERY_SETTINGS = (
    "sweep_interval_s", "sweep_stale_after_s", "reconcile_grace_s", "digest_lease_s",
    "sendgrid_timeout_s",
)  # fmt: skip
DEFAULTS: dict[str, object] = {n: Settings.model_fields[n].default for n in _RECOVERY_SETTINGS}


def _settled_within(rig: Rig, since: float, what: str) -> float:
    rig.wait_until(rig.settled, what, RECOVERY_BUDGET_S - (time.monotonic() - since))
    return time.monotonic() - since


def test_after_a_worker_is_killed_every_digest_is_delivered_within_two_minutes(
    make_rig: Callable[..., Rig],
) -> None:
    # Slow replies keep sends in flight. The killed worker's tasks stay unacknowledged in
    # Redis for the visibility timeout (an hour): only the leases bring them back sooner.
    rig = make_rig(DEFAULTS, hang_rate=0.3, hold_s=0.3)
    with rig.workers() as runtime:
        rig.wait_until(lambda: rig.sent() >= 2 * N_USERS // 3, "two thirds sent", 90)
        runtime.kill_worker()
        killed = time.monotonic()
        left = N_USERS - rig.sent()
        runtime.start_worker()
        recovery_s = _settled_within(rig, killed, "recovery after the kill")
    print(f"\nworker SIGKILL with {left} digests not yet sent: all sent {recovery_s:.1f} s later")
    assert_exactly_once(rig)


def test_after_a_provider_stall_at_the_end_of_a_run_every_digest_is_delivered_within_two_minutes(
    make_rig: Callable[..., Rig],
) -> None:
    # From the 91st request on, SendGrid's front end stops taking requests: they hang, then
    # drop without a reply, and no event will ever mention them. (Set up front: a run
    # sending many requests at once is past its last ten before a test could flip it.)
    # After three stalled requests (or, when only two digests were left, once nothing else
    # is), it recovers; no later event moves the stream past the unknown attempts.
    stalled_from = N_USERS - 10
    rig = make_rig(DEFAULTS, hold_s=1.5, stall_rate=1.0, healthy_requests=stalled_from)
    with rig.workers():
        rig.wait_until(lambda: rig.standin.attempts > stalled_from, "all but ten sent", 90)
        stalled = time.monotonic()
        rig.wait_until(
            lambda: rig.standin.attempts >= stalled_from + 3 or _only_sent_or_unknown(rig),
            "three stalls, or the run's last digests left unknown",
            60,
        )
        rig.standin.stall_rate = 0.0
        recovery_s = _settled_within(rig, stalled, "recovery after the stall")
    print(f"\nprovider stall at the end of the run: all sent {recovery_s:.1f} s after it began")
    assert_exactly_once(rig)
    assert attempt_outcomes(rig)["unknown"] >= 1  # the stall really left digests unknown


def _only_sent_or_unknown(rig: Rig) -> bool:
    statuses = rig.statuses()
    return statuses.get("unknown", 0) > 0 and set(statuses) <= {"sent", "unknown"}
