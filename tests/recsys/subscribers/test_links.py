import base64
import json
from datetime import timedelta

import pytest

from recsys.settings import Settings
from recsys.subscribers.links import Keyring, LinkMaker, TokenError, key_id, make_token, read_token
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


@pytest.mark.parametrize("purpose", ["click", "more", "less", "confirm", "preferences"])
def test_every_link_but_unsubscribe_expires(purpose: str) -> None:
    token = make_token(SECRET, purpose, {"u": 1}, NOW - timedelta(seconds=1))
    with pytest.raises(TokenError, match="expired"):
        read_token(SECRET, token, purpose, NOW)


def test_an_unsubscribe_link_never_expires() -> None:
    token = make_token(SECRET, "unsubscribe", {"u": 1}, NOW - timedelta(days=3650))

    assert read_token(SECRET, token, "unsubscribe", NOW) == {"u": 1}


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


def test_it_signs_confirm_and_preferences_links_for_their_own_purpose() -> None:
    links = LinkMaker(SECRET, "https://pb.example.org", LATER)
    confirm = links.confirm(7, NOW).rsplit("/", 1)[1]
    prefs = links.preferences(7, NOW).rsplit("/", 1)[1]

    assert read_token(SECRET, confirm, "confirm", NOW) == {"u": 7, "c": int(NOW.timestamp())}
    assert read_token(SECRET, prefs, "preferences", NOW)["u"] == 7
    with pytest.raises(TokenError, match="for 'confirm', not 'preferences'"):
        read_token(SECRET, confirm, "preferences", NOW)


def test_it_names_the_signing_key_in_the_token() -> None:
    token = make_token(SECRET, "click", {"u": 1}, LATER)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload["k"] == key_id(SECRET) != key_id("another secret")


def test_a_rotated_key_still_reads_links_signed_before_the_rotation() -> None:
    old_link = make_token("old secret", "unsubscribe", {"u": 1}, LATER)
    rotated = Keyring("new secret", previous=("old secret",))

    assert read_token(rotated, old_link, "unsubscribe", NOW) == {"u": 1}
    assert read_token(rotated, make_token(rotated, "click", {"u": 2}, LATER), "click", NOW)
    with pytest.raises(TokenError, match="signature"):
        read_token(Keyring("new secret"), old_link, "unsubscribe", NOW)


def test_new_links_are_signed_with_the_current_key_only() -> None:
    rotated = Keyring("new secret", previous=("old secret",))
    token = make_token(rotated, "click", {"u": 1}, LATER)
    with pytest.raises(TokenError, match="signature"):
        read_token("old secret", token, "click", NOW)


def test_the_keyring_comes_from_the_settings(settings: Settings) -> None:
    rotated = settings.model_copy(update={"previous_secret_keys": " old-1 , ,old-2"})
    assert Keyring.from_settings(rotated) == Keyring("test-secret-key", ("old-1", "old-2"))


@pytest.mark.parametrize(
    "payload",
    [b"[]", b"not json", b'{"k": 1}', "é".encode("latin-1")],
)
def test_it_rejects_payloads_that_are_not_ours(payload: bytes) -> None:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        read_token(SECRET, f"{body}.AAAA", "click", NOW)


def test_it_rejects_overlong_tokens() -> None:
    with pytest.raises(TokenError, match="malformed"):
        read_token(SECRET, "a" * 5000 + ".b", "click", NOW)


@pytest.mark.parametrize("ids", [(1, 2, 3), (0, 0, 0), (10**12, 7, 99_999_999), (-1, 5, 6)])
@pytest.mark.parametrize("route, purpose", [("c", "click"), ("more", "more"), ("less", "less")])
def test_link_maker_signs_paper_links_exactly_as_make_token(
    ids: tuple[int, int, int], route: str, purpose: str
) -> None:
    keys = Keyring("new secret", previous=("old secret",))
    links = LinkMaker(keys, "https://pb.example.org", LATER)
    user, paper, digest = ids

    url = getattr(links, purpose)(user, paper, digest)

    expected = make_token(keys, purpose, {"u": user, "p": paper, "d": digest}, LATER)
    assert url == f"https://pb.example.org/{route}/{expected}"
    # Still readable after the next rotation, like every link already in an inbox.
    rotated = Keyring("newer secret", previous=("new secret",))
    token = url.rsplit("/", 1)[1]
    assert read_token(rotated, token, purpose, NOW) == {"u": user, "p": paper, "d": digest}


def test_link_maker_signs_ids_that_are_not_plain_ints_as_make_token_does() -> None:
    links = LinkMaker(SECRET, "https://pb.example.org", LATER)
    url = links.click(True, 2, 3)  # a bool is an int to mypy, but prints as true in JSON
    expected = make_token(SECRET, "click", {"u": True, "p": 2, "d": 3}, LATER)
    assert url.rsplit("/", 1)[1] == expected
