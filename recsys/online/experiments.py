"""Online experiments, the stored part: define, stop, and resolve each user's arm.

The pure rules (variant configs, hashing users into arms) are in ``recsys.online.assignment``; this
module reads and writes the ``experiments`` table and turns both into one :class:`Arm` per
user for ``recsys.digests.scoring``. At most one experiment runs at a time, so every digest is
ranked by exactly one arm and its ``experiment_id``/``variant`` columns are the exposure log.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import ExperimentRow
from recsys.online.assignment import (
    HOLDOUT,
    ExperimentError,
    RankerConfig,
    Variant,
    assign,
    in_share,
    parse_variants,
)
from recsys.settings import Settings

RUNNING, STOPPED = "running", "stopped"
SPLIT, INTERLEAVE = "split", "interleave"  # experiments.kind


@dataclass(frozen=True)
class RankingDefaults:
    """The operator's policy for users outside any experiment (from ``Settings``).

    The defaults (no exploration, no holdout) rank exactly as the plain top-k.
    """

    explore_slots: int = 0
    holdout_share: float = 0.0
    holdout_salt: str = "paperboy-holdout"

    @classmethod
    def from_settings(cls, settings: Settings) -> RankingDefaults:
        return cls(settings.explore_slots, settings.holdout_share, settings.holdout_salt)


@dataclass(frozen=True)
class Arm:
    """How one user's digest is ranked, and the labels logged with it."""

    config: RankerConfig = field(default_factory=RankerConfig)
    experiment_id: int | None = None
    variant: str | None = None


def create_experiment(
    session: Session,
    name: str,
    variants: Sequence[Variant],
    now: datetime,
    *,
    salt: str | None = None,
    kind: str = SPLIT,
) -> ExperimentRow:
    """Store a running experiment; its arms apply from the next ranking on.

    ``kind`` is ``SPLIT`` (users divided between the variants) or ``INTERLEAVE``
    (``recsys.online.interleaved`` checks its variants and ranks its digests).

    Raises
    ------
    ExperimentError
        If the name is taken, another experiment is running (stop it first), or the
        variants do not pass :func:`recsys.online.assignment.parse_variants`.
    """
    checked = parse_variants([v.as_dict() for v in variants])
    if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)) is not None:
        raise ExperimentError(f"name: an experiment called {name!r} already exists")
    running = running_experiment(session)
    if running is not None:
        raise ExperimentError(
            f"experiment {running.name!r} is running; stop it first "
            "(one experiment at a time keeps every digest in exactly one arm)"
        )
    row = ExperimentRow(
        name=name,
        salt=salt or secrets.token_hex(8),
        variants=[v.as_dict() for v in checked],
        status=RUNNING,
        kind=kind,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def stop_experiment(session: Session, name: str, now: datetime) -> bool:
    """Stop ``name``: its users are ranked by the defaults again. False if already stopped."""
    row = get_experiment(session, name)
    if row.status == STOPPED:
        return False
    row.status, row.stopped_at = STOPPED, now
    session.flush()
    return True


def get_experiment(session: Session, name: str) -> ExperimentRow:
    """The experiment called ``name``; ``ExperimentError`` naming the known ones otherwise."""
    row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
    if row is None:
        known = session.scalars(select(ExperimentRow.name).order_by(ExperimentRow.id)).all()
        raise ExperimentError(f"no experiment called {name!r}; known: {list(known)}")
    return row


def running_experiment(session: Session) -> ExperimentRow | None:
    """The running experiment, if any."""
    return session.scalar(select(ExperimentRow).where(ExperimentRow.status == RUNNING))


def experiment_variants(row: ExperimentRow) -> tuple[Variant, ...]:
    """The stored variants, parsed (and so checked again)."""
    return parse_variants(row.variants)


def arms_for(session: Session, user_ids: Sequence[int], defaults: RankingDefaults) -> list[Arm]:
    """Each user's arm: the holdout first, then the running experiment, else the defaults.

    Holdout users are kept out of experiments, so no arm mixes uniform digests in.
    """
    holdout = in_share(defaults.holdout_salt, user_ids, defaults.holdout_share)
    outside = Arm(RankerConfig(explore_slots=defaults.explore_slots))
    arms = [Arm(RankerConfig(uniform=True), None, HOLDOUT) if h else outside for h in holdout]
    experiment = running_experiment(session)
    if experiment is None:
        return arms
    variants = experiment_variants(experiment)
    chosen = assign(experiment.salt, user_ids, [v.allocation for v in variants])
    for row, index in enumerate(chosen.tolist()):
        if index >= 0 and not holdout[row]:
            variant = variants[index]
            arms[row] = Arm(variant.config, experiment.id, variant.name)
    return arms
