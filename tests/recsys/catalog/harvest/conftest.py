"""A fake clock for harvesting: waits are recorded, never slept."""

from __future__ import annotations

import pytest

from recsys.catalog.harvest.fetch import Timing


class FakeClock:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def timing() -> Timing:
    clock = FakeClock()
    return Timing(clock=clock, sleep=clock.sleep)
