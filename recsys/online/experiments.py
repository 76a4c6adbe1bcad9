"""Online experiments, the stored part: define, stop, and resolve each user's arm.

The pure rules (variant configs, hashing users into arms) are in ``recsys.online.assignment``; this
module reads and writes the ``experiments`` table and turns both into one :class:`Arm` per
user for ``recsys.digests.scoring``. At most one experiment runs at a time, so every digest is
ranked by exactly one arm and its ``experiment_id``/``variant`` columns are the exposure log.
"""

from __future__ import annotations

import re
import secrets
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

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
# Below a few hundred digests an arm, the plug-in variance behind the always-valid intervals
# is itself too noisy for them to hold (recsys.online.sequential).
MIN_HORIZON_DIGESTS = 100


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
    plan: ExperimentPlan | None = None,
) -> ExperimentRow:
    """Store a running experiment; its arms apply from the next ranking on.

    ``kind`` is ``SPLIT`` (users divided between the variants) or ``INTERLEAVE``
    (``recsys.online.interleaved`` checks its variants and ranks its digests). ``plan``
    (from the experiment's file) is kept for the report: control, alpha and horizon.

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
        plan=None if plan is None else plan.stored(),
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


# --- experiment files ------------------------------------------------------------------------
DEFAULT_ALPHA = 0.05
_PLAN_KEYS = ("name", "description", "salt", "alpha", "control", "horizon", "variant")
_VARIANT_KEYS = ("name", "allocation", "config")
_EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PlanError(ExperimentError):
    """A bad experiment file: ``str(error)`` is ``"<file>:<line>: <key>: <reason>"``."""

    def __init__(self, path: Path, line: int | None, key: str, reason: str) -> None:
        self.path, self.line, self.key, self.reason = path, line, key, reason
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


@dataclass(frozen=True)
class ExperimentPlan:
    """An online experiment as written in its TOML file (see ``docs/experiments.md``).

    Attributes
    ----------
    name, salt : str
        The experiment's name; the hash salt (None: a random one at creation).
    variants : tuple of Variant
        The arms, as ``parse_variants`` checks them.
    control : str
        The arm every other one is compared with (default: the first).
    alpha : float
        Error rate of the always-valid intervals and of the final test, in (0, 0.5).
    horizon_digests : int or None
        Planned sent digests per arm; the fixed-horizon result is read there.
    ends_at : datetime or None
        Or: the end date (UTC); the fixed-horizon result covers digests sent before it.
    """

    name: str
    variants: tuple[Variant, ...]
    control: str
    salt: str | None = None
    alpha: float = DEFAULT_ALPHA
    horizon_digests: int | None = None
    ends_at: datetime | None = None
    description: str = ""

    @classmethod
    def default(cls, name: str, variants: Sequence[Variant]) -> ExperimentPlan:
        """The plan of an experiment created without a file: alpha 0.05, no horizon."""
        return cls(name, tuple(variants), variants[0].name)

    def stored(self) -> dict[str, Any]:
        """What the experiments row keeps of the plan besides the arms (``ExperimentRow.plan``)."""
        return {
            "control": self.control,
            "alpha": self.alpha,
            "horizon_digests": self.horizon_digests,
            "ends_at": None if self.ends_at is None else self.ends_at.isoformat(),
            "description": self.description,
        }

    @classmethod
    def of_row(cls, row: ExperimentRow, variants: Sequence[Variant]) -> ExperimentPlan:
        """The plan an experiment was started with; the defaults when none was stored."""
        stored = row.plan
        if not stored:
            return cls.default(row.name, variants)
        ends_at = stored.get("ends_at")
        return cls(
            row.name,
            tuple(variants),
            str(stored.get("control") or variants[0].name),
            salt=row.salt,
            alpha=float(stored.get("alpha", DEFAULT_ALPHA)),
            horizon_digests=stored.get("horizon_digests"),
            ends_at=None if ends_at is None else datetime.fromisoformat(ends_at),
            description=str(stored.get("description", "")),
        )

    def horizon_dict(self) -> dict[str, Any] | None:
        if self.horizon_digests is not None:
            return {"digests_per_arm": self.horizon_digests}
        return None if self.ends_at is None else {"until": self.ends_at.isoformat()}


def load_plan(path: Path) -> ExperimentPlan:
    """Read and check an online experiment file.

    Raises
    ------
    PlanError
        Naming the file, the line (TOML syntax errors, and the line of the offending key or
        ``[[variant]]`` table) and the reason.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(path, None, "", f"cannot read the file ({exc})") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.14 gives exc.lineno; older ones only say "(at line N, column M)".
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        raise PlanError(path, line, "", f"invalid TOML ({exc})") from exc
    return _PlanReader(path, text).plan(raw)


class _PlanReader:
    """Checks one parsed file; every error carries the file and the key's line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def fail(self, key: str, reason: str, line: int | None = None) -> PlanError:
        return PlanError(self.path, line or self.line_of(key), key, reason)

    def line_of(self, key: str) -> int | None:
        """The line of a top-level ``key = ...``, or of the i-th ``[[variant]]`` header."""
        match = re.match(r"variant\[(\d+)\]", key)
        if match:
            headers = [i for i, t in enumerate(self.lines, 1) if _is_variant_header(t)]
            index = int(match.group(1))
            return headers[index] if index < len(headers) else None
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        return next((i for i, t in enumerate(self.lines, 1) if pattern.match(t)), None)

    def plan(self, raw: dict[str, Any]) -> ExperimentPlan:
        for key in raw:
            if key not in _PLAN_KEYS:
                raise self.fail(key, f"unknown key (known: {', '.join(_PLAN_KEYS)})")
        name = self.name(raw)
        variants = self.variants(raw.get("variant"))
        control = raw.get("control", variants[0].name)
        if control not in [v.name for v in variants]:
            raise self.fail("control", f"{control!r} is not a variant")
        digests, ends_at = self.horizon(raw.get("horizon"))
        description = self.text(raw, "description") or ""
        return ExperimentPlan(
            name, variants, control, salt=self.text(raw, "salt"), alpha=self.alpha(raw),
            horizon_digests=digests, ends_at=ends_at, description=description,
        )  # fmt: skip

    def name(self, raw: dict[str, Any]) -> str:
        name = raw.get("name")
        if name is None:
            raise self.fail("name", "missing", line=1)
        if not isinstance(name, str) or not _EXPERIMENT_NAME.match(name):
            raise self.fail("name", f"{name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        return name

    def text(self, raw: dict[str, Any], key: str) -> str | None:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def alpha(self, raw: dict[str, Any]) -> float:
        value = raw.get("alpha", DEFAULT_ALPHA)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 0.5:
            raise self.fail("alpha", f"{value!r} must be a number in (0, 0.5), e.g. 0.05")
        return float(value)

    def horizon(self, value: Any) -> tuple[int | None, datetime | None]:
        """``horizon = 5000`` (sent digests per arm) or ``horizon = 2027-01-31`` (end date)."""
        if value is None:
            return None, None
        if isinstance(value, int) and not isinstance(value, bool):
            if value < MIN_HORIZON_DIGESTS:
                reason = f"{value} digests per arm; at least {MIN_HORIZON_DIGESTS} are needed"
                raise self.fail("horizon", reason + " for the intervals to hold")
            return value, None
        if isinstance(value, datetime):
            return None, value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return None, datetime.combine(value, time(), tzinfo=UTC)
        raise self.fail(
            "horizon", f"{value!r}: expected digests per arm (an integer) or an end date"
        )

    def variants(self, value: Any) -> tuple[Variant, ...]:
        if value is None:
            raise self.fail("variant", "missing: add [[variant]] tables with name and allocation")
        if not isinstance(value, list):
            raise self.fail("variant", "expected [[variant]] tables (an array of tables)")
        for i, item in enumerate(value):
            unknown = sorted(set(item) - set(_VARIANT_KEYS)) if isinstance(item, dict) else []
            if unknown:
                raise self.fail(f"variant[{i}]", f"unknown key(s) {unknown}; "
                                f"allowed: {', '.join(_VARIANT_KEYS)}")  # fmt: skip
        try:
            return parse_variants(value)
        except ExperimentError as exc:
            # parse_variants says "variants[i].key: reason"; point at that table's line.
            key, _, reason = str(exc).replace("variants", "variant", 1).partition(": ")
            index = re.match(r"variant\[\d+\]", key)
            table = index.group(0) if index else "variant[0]"
            raise self.fail(key, reason, line=self.line_of(table)) from exc


def _is_variant_header(line: str) -> bool:
    return re.match(r"^\s*\[\[\s*variant\s*\]\]", line) is not None
