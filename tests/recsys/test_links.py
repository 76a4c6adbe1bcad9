from datetime import timedelta

import pytest

from recsys.links import LinkMaker, TokenError, make_token, read_token
from tests.conftest import NOW

SECRET = "s3cret"
LATER = NOW + timedelta(days=1)


def test_it_round_trips_the_data_for_the_right_purpose() -> None:
    token = make_token(SECRET, "click", {"u": 1, "p": 2, "d": 3}, LATER)
    assert read_token(SECRET, token, "click", NOW) == {"u": 1, "p": 2, "d": 3}


def test_it_rejects_a_token_used_for_another_purpose() -> None:
    token = make_token(SECRET, "unsubscribe", {"u": 1}, LATER)
    with pytest.raises(TokenError, match="for 'unsubscribe', not 'click'"):
        read_token(SECRET, token, "click", NOW)


def test_it_rejects_an_expired_token() -> None:
    token = make_token(SECRET, "click", {"u": 1}, NOW - timedelta(seconds=1))
    with pytest.raises(TokenError, match="expired"):
        read_token(SECRET, token, "click", NOW)


@pytest.mark.parametrize("position", [0, 10, -3])
def test_it_rejects_a_tampered_token(position: int) -> None:
    token = make_token(SECRET, "click", {"u": 1, "p": 2, "d": 3}, LATER)
    flipped = "A" if token[position] != "A" else "B"
    tampered = token[:position] + flipped + token[position + 1 :]
    with pytest.raises(TokenError):
        read_token(SECRET, tampered, "click", NOW)


def test_it_rejects_a_token_signed_with_another_key() -> None:
    token = make_token("other", "click", {"u": 1}, LATER)
    with pytest.raises(TokenError, match="signature"):
        read_token(SECRET, token, "click", NOW)


@pytest.mark.parametrize("garbage", ["", "nodot", ".", "a.b", "%%%.%%%"])
def test_it_rejects_garbage(garbage: str) -> None:
    with pytest.raises(TokenError):
        read_token(SECRET, garbage, "click", NOW)


def test_link_maker_builds_urls_under_the_public_base() -> None:
    links = LinkMaker(SECRET, "https://pb.example.org/", LATER)
    url = links.click(1, 2, 3)
    assert url.startswith("https://pb.example.org/c/")
    assert read_token(SECRET, url.rsplit("/", 1)[1], "click", NOW) == {"u": 1, "p": 2, "d": 3}
    assert links.unsubscribe(7).startswith("https://pb.example.org/unsubscribe/")
    assert links.more(1, 2, 3).startswith("https://pb.example.org/more/")
    assert links.less(1, 2, 3).startswith("https://pb.example.org/less/")
