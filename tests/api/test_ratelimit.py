"""Sign-up limits: counted per client and per address, shared through Redis when set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.ratelimit import SignUpLimits
from recsys.settings import Settings
from recsys.testing.processes import RedisServer


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_the_limits_count_each_client_and_each_address_apart(settings: Settings) -> None:
    limits = SignUpLimits(settings.model_copy(update={"signup_limit_per_ip": "2/hour"}))

    assert [limits.client("198.51.100.7").allowed for _ in range(3)] == [True, True, False]
    assert limits.client("198.51.100.8").allowed
    assert limits.confirmation("a@example.org").allowed
    assert not limits.confirmation("a@example.org").allowed
    assert limits.confirmation("b@example.org").allowed


def test_a_refusal_says_when_to_come_back(settings: Settings) -> None:
    limits = SignUpLimits(settings.model_copy(update={"signup_limit_per_address": "1/day"}))
    limits.confirmation("a@example.org")

    verdict = limits.confirmation("a@example.org")

    assert not verdict.allowed and 86_000 < verdict.retry_after_s <= 86_400


def test_server_processes_share_the_counts_through_redis(
    settings: Settings, redis_url: str
) -> None:
    shared = settings.model_copy(update={"rate_limit_url": redis_url})
    one, other = SignUpLimits(shared), SignUpLimits(shared)

    assert one.confirmation("a@example.org").allowed
    assert not other.confirmation("a@example.org").allowed


def test_without_a_url_each_process_counts_alone(settings: Settings) -> None:
    one, other = SignUpLimits(settings), SignUpLimits(settings)

    assert one.confirmation("a@example.org").allowed
    assert other.confirmation("a@example.org").allowed


def test_an_unreachable_store_lets_sign_up_through(settings: Settings) -> None:
    limits = SignUpLimits(settings.model_copy(update={"rate_limit_url": "redis://127.0.0.1:1/0"}))

    assert limits.client("198.51.100.7").allowed
