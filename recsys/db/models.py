"""SQLAlchemy 2 models. Works on SQLite (embedded mode) and PostgreSQL.

Timestamps are stored as timezone-aware UTC. The unique ``(user_id, period)`` key on
``digests`` is what makes a second digest for the same period impossible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are plain integers there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class PaperRow(Base):
    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    arxiv_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    doi: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Not unique: two papers may share a title yet differ in arXiv id or DOI.
    title_key: Mapped[str] = mapped_column(String(255), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    published: Mapped[datetime | None] = mapped_column(UtcDateTime())
    url: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # What harvested sources add (0004). ``updated`` is the source's own revision date;
    # ``updated_at`` above is when this row last changed.
    updated: Mapped[datetime | None] = mapped_column(UtcDateTime())
    journal_ref: Mapped[str | None] = mapped_column(Text)
    comments: Mapped[str | None] = mapped_column(Text)
    pdf_url: Mapped[str | None] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    send_hour: Mapped[int] = mapped_column(Integer, default=7)
    frequency: Mapped[str] = mapped_column(String(16), default="daily")
    digest_size: Mapped[int] = mapped_column(Integer, default=10)
    # How close a paper must be to be sent (recsys.recommender.relevance.STRICTNESS).
    strictness: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    next_digest_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Double opt-in: NULL until the address is confirmed; unconfirmed users get no digest.
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The confirmation e-mail as an outbox row: NULL until a backend accepted it, so a
    # sign-up made while the broker was down is found and mailed by the sweep.
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    confirmation_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    interests: Mapped[list[InterestRow]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="InterestRow.id"
    )


class InterestRow(Base):
    __tablename__ = "interests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # keyword | author | category | text
    value: Mapped[str] = mapped_column(Text)

    user: Mapped[UserRow] = relationship(back_populates="interests")


class EventRow(Base):
    """One interaction: click, more (like this), less (like this), seed (paper given at sign-up)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_created", "user_id", "created_at"),
        Index("ix_events_digest", "digest_id"),  # click attribution reads clicks by digest
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    user_agent: Mapped[str | None] = mapped_column(Text)
    # True for clicks that look automated (link scanners, HEAD, seconds after delivery):
    # kept for the record, never counted as interest.
    suspect: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DigestRow(Base):
    """The outbox row: one per (user, period); its status moves forward by conditional updates."""

    __tablename__ = "digests"
    __table_args__ = (
        UniqueConstraint("user_id", "period", name="uq_digests_user_period"),
        Index("ix_digests_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Start of the window of papers this digest covers (a catch-up covers several days).
    covers_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Until when the task working on this row holds it (renewed while it works). NULL: no
    # task has started on it (it may wait in the queue). Past: the task is gone; the sweep
    # re-enqueues the row at once instead of waiting PAPERBOY_SWEEP_STALE_AFTER_S.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The ranking log (issue 6), written when the digest is ranked or skipped. Exposure to an
    # online experiment is this row: experiment_id and variant say which arm ranked it.
    # The global holdout is logged as variant "holdout" with no experiment.
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), index=True
    )
    variant: Mapped[str | None] = mapped_column(String(64))
    # The effective ranker config (RankerConfig.as_dict(); {} is the plain top-k).
    ranker_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The pool the user could be shown: the chunk's pool, and a bit per pool entry (packed,
    # in the pool's order) set where the paper was rankable for this user.
    candidate_pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidate_pools.id", ondelete="SET NULL"), index=True
    )
    candidate_mask: Mapped[bytes | None] = mapped_column(LargeBinary)


class DeliveryAttemptRow(Base):
    """One attempt to hand a digest to the e-mail backend, recorded before the attempt."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (UniqueConstraint("digest_id", "attempt", name="uq_delivery_attempt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    backend: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # sent|transient|permanent|unknown
    detail: Mapped[str | None] = mapped_column(Text)


class ProviderEventRow(Base):
    """A delivery event reported by the provider (SendGrid Event Webhook), de-duplicated."""

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    digest_id: Mapped[int | None] = mapped_column(
        ForeignKey("digests.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DigestItemRow(Base):
    __tablename__ = "digest_items"
    __table_args__ = (
        UniqueConstraint("digest_id", "position", name="uq_digest_items_position"),
        UniqueConstraint("digest_id", "paper_id", name="uq_digest_items_paper"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"))
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    # Position-wise marginal probability that the policy showed this paper at this position
    # (recsys.digests.exploration); 1 for a ranked slot, so rows from before exploration are exact
    # too.
    propensity: Mapped[float] = mapped_column(Float, default=1.0, server_default="1.0")
    explored: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # In an interleaving experiment, the team ("a" or "b") whose ranking put the paper here
    # (recsys.online.interleaving); NULL in every other digest.
    team: Mapped[str | None] = mapped_column(String(1))


class SuppressionRow(Base):
    """An address we must never send to again (unsubscribe, bounce, spam report)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ExperimentRow(Base):
    """An online experiment: users split between variants by a salted hash of their id.

    ``variants`` is ``[{"name", "allocation", "config"}, ...]`` as ``recsys.online.assignment``
    reads it. At most one experiment is ``running`` at a time, so a digest has one arm.
    """

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # "split": users divided between arms; "interleave": exactly two variants, every
    # eligible digest a team-draft interleaving of both (recsys.online.interleaving).
    kind: Mapped[str] = mapped_column(String(16), default="split", server_default="split")
    # What its TOML file said besides the arms (control, alpha, horizon, description), so
    # the report reads it without the file; None for experiments made before it was kept.
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | stopped
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CandidatePoolRow(Base):
    """The candidate papers of one ranking chunk, stored once for all its digests.

    A digest's own pool is these ids where its ``candidate_mask`` bit is set: about 8 KB a
    chunk of 1,000 candidates plus 125 bytes a digest, instead of a row per (digest, paper).
    """

    __tablename__ = "candidate_pools"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    paper_ids: Mapped[list[int]] = mapped_column(JSON)  # ascending
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class HarvestSourceRow(Base):
    """One configured paper source's harvesting state, keyed by the name in the sources file.

    ``watermark`` is where the next run starts (an OAI-PMH datestamp, a date, a timestamp:
    each kind says); it only moves when a whole run succeeded. ``lease_until`` is the run
    lock: a run takes it with a conditional ``UPDATE`` and a second run finds it taken, and
    a run whose worker died frees it by expiring.
    """

    __tablename__ = "harvest_sources"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    watermark: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)


class ModelVersionRow(Base):
    """A published model version: what every host needs to fetch it (see
    ``recsys.training.store``). ``files`` lists each file of the version with its size and
    the sha256 of the whole file and of each chunk, so a fetch verifies what it read."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)  # the artifact's manifest
    files: Mapped[dict[str, Any]] = mapped_column(JSON)  # {path: {size, sha256, chunks}}


class ModelChunkRow(Base):
    """One chunk (at most ``store.CHUNK_BYTES``) of one file of a published version."""

    __tablename__ = "model_chunks"

    version: Mapped[str] = mapped_column(
        String(64), ForeignKey("model_versions.version", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ActiveModelRow(Base):
    """Which version is active, for every host: at most one row (``slot`` = 1)."""

    __tablename__ = "active_model"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(
        String(64), ForeignKey("model_versions.version", ondelete="RESTRICT")
    )
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime())
