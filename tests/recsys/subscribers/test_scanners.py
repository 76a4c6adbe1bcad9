from datetime import timedelta

import pytest

from recsys.subscribers.scanners import is_burst, suspect_reason
from tests.conftest import NOW

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
SENT = NOW - timedelta(hours=2)
WINDOW = 10.0


def test_a_reader_clicking_hours_later_is_not_suspect() -> None:
    assert suspect_reason("GET", CHROME, NOW, SENT, WINDOW) is None


def test_a_head_request_is_suspect() -> None:
    assert suspect_reason("HEAD", CHROME, NOW, SENT, WINDOW) == "HEAD request"


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Safelinks/1.0",
        "Proofpoint URL Defense",
        "python-requests/2.31.0",
        "curl/8.5.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Microsoft Office Existence Discovery",
        "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/126.0",
    ],
)
def test_known_scanner_agents_are_suspect(agent: str) -> None:
    reason = suspect_reason("GET", agent, NOW, SENT, WINDOW)
    assert reason is not None and reason.startswith("scanner User-Agent")


@pytest.mark.parametrize("agent", [None, "", "   "])
def test_a_missing_user_agent_is_suspect(agent: str | None) -> None:
    assert suspect_reason("GET", agent, NOW, SENT, WINDOW) == "no User-Agent"


def test_a_click_seconds_after_delivery_is_suspect() -> None:
    sent = NOW - timedelta(seconds=3)
    assert suspect_reason("GET", CHROME, NOW, sent, WINDOW) == "clicked within 10 s of delivery"


def test_a_click_just_outside_the_window_or_without_a_send_time_counts() -> None:
    assert suspect_reason("GET", CHROME, NOW, NOW - timedelta(seconds=10), WINDOW) is None
    assert suspect_reason("GET", CHROME, NOW, None, WINDOW) is None


def test_a_zero_window_turns_the_timing_rule_off() -> None:
    assert suspect_reason("GET", CHROME, NOW, NOW, 0.0) is None


@pytest.mark.parametrize(
    ("links", "burst"),
    [
        ([(7, "click")], False),  # a reader's one click
        ([(7, "click"), (7, "click")], False),  # a double click
        ([(7, "more"), (7, "less")], True),  # both buttons of one paper: no reader does that
        ([(7, "click"), (8, "click"), (9, "click")], True),  # every paper of the digest
    ],
)
def test_several_different_links_of_a_digest_are_a_burst(
    links: list[tuple[int, str]], burst: bool
) -> None:
    assert is_burst(links) is burst
