"""The settings object: production refuses secrets that could be guessed or are public."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from recsys.settings import DEV_SECRET_KEY, Settings

STRONG_SECRET = secrets.token_urlsafe(32)
STRONG_ADMIN_KEY = secrets.token_urlsafe(24)


def production(**values: str) -> Settings:
    return Settings(environment="production", **values)  # type: ignore[arg-type]


def test_production_accepts_keys_made_as_the_error_says() -> None:
    settings = production(secret_key=STRONG_SECRET, admin_api_key=STRONG_ADMIN_KEY)

    assert settings.secret_key == STRONG_SECRET


@pytest.mark.parametrize(
    ("values", "named", "why"),
    [
        ({"secret_key": "x"}, "PAPERBOY_SECRET_KEY", "has 1 characters"),
        ({"secret_key": STRONG_SECRET[:42]}, "PAPERBOY_SECRET_KEY", "at least 43"),
        ({"secret_key": "a" * 64}, "PAPERBOY_SECRET_KEY", "too few characters"),
        (
            {"secret_key": STRONG_SECRET, "admin_api_key": "k"},
            "PAPERBOY_ADMIN_API_KEY",
            "at least 32",
        ),
    ],
)
def test_production_refuses_a_weak_key_and_says_how_to_make_one(
    values: dict[str, str], named: str, why: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        production(**values)

    message = str(caught.value)
    assert named in message and why in message
    assert "secrets.token_urlsafe(32)" in message


@pytest.mark.parametrize("empty", [None, ""])
def test_production_without_an_admin_key_keeps_the_admin_api_off(empty: str | None) -> None:
    settings = Settings(environment="production", secret_key=STRONG_SECRET, admin_api_key=empty)

    assert not settings.admin_api_key


def test_outside_development_the_built_in_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="token_urlsafe"):
        Settings(environment="test", secret_key=DEV_SECRET_KEY)


def test_development_keeps_working_with_nothing_set() -> None:
    assert Settings(environment="development").secret_key == DEV_SECRET_KEY


@pytest.mark.parametrize("field", ["signup_limit_per_ip", "signup_limit_per_address"])
def test_a_rate_limit_that_is_not_a_rate_is_refused_naming_it(field: str) -> None:
    with pytest.raises(ValidationError, match=rf"{field}[\s\S]*'often' is not a rate"):
        Settings(**{field: "often"})  # type: ignore[arg-type]


def test_rate_limits_default_to_ten_sign_ups_an_hour_and_one_e_mail_a_day() -> None:
    settings = Settings()

    assert (settings.signup_limit_per_ip, settings.signup_limit_per_address) == ("10/hour", "1/day")
    assert settings.rate_limit_url is None


def test_a_lease_shorter_than_a_sendgrid_request_is_refused() -> None:
    # Otherwise the sweep could resend a digest whose request is still going on.
    with pytest.raises(ValueError, match="PAPERBOY_DIGEST_LEASE_S"):
        Settings(digest_lease_s=10, sendgrid_timeout_s=10)
    assert Settings().digest_lease_s > Settings().sendgrid_timeout_s
