"""Ranking the digests of a running interleaving experiment (``recsys.online.interleaved``).

``recsys.digests.scoring.rank_digests`` first ranks every digest by its user's arm; this
module then takes the digests the interleaving experiment owns (its arms ``a`` and ``b``),
ranks them a second time with the other variant's config against the same candidate block,
and replaces each with the team-draft of both lists (``recsys.online.interleaving``). Scores
are each item's score under the ranker of the team that picked it; propensities are the
draft's position-wise marginals given both lists; ``explored`` is False throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import String, Table, bindparam, func, update
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, UserRow
from recsys.digests.exploration import Slate
from recsys.online.experiments import INTERLEAVE, Arm, experiment_variants, running_experiment
from recsys.online.interleaved import INTERLEAVED, InterleavedConfig
from recsys.online.interleaving import draft_rng, position_marginals, team_draft
from recsys.training.model import Model

if TYPE_CHECKING:
    from recsys.digests.scoring import RankedDigest, Ranking

Teams = dict[int, NDArray[np.str_]]  # ranking row -> team of each slate position
_ITEMS: Table = DigestItemRow.__table__  # type: ignore[assignment]  # declarative: a Table
# On the table, not the mapped class: an ORM bulk UPDATE refuses extra WHERE criteria.
_SET_TEAMS = (
    update(_ITEMS)
    .where(_ITEMS.c.digest_id == bindparam("for_digest"))
    .values(team=func.substr(bindparam("teams", type_=String), _ITEMS.c.position + 1, 1))
)


def interleave_ranking(
    session: Session,
    model: Model,
    users: Sequence[UserRow],
    since: dict[int, datetime],
    now: datetime,
    ranking: Ranking,
    *,
    seeds: Sequence[int],
    min_score: float | None,
) -> tuple[Ranking, Teams]:
    """``ranking`` with the running interleaving experiment's digests drafted from both arms.

    Parameters
    ----------
    users, since, now, seeds, min_score
        As given to ``rank_users`` for ``ranking`` (``seeds`` are the digest ids, which
        seed each draft with the experiment's salt).
    ranking : Ranking
        The chunk ranked by each user's arm.

    Returns
    -------
    Ranking, Teams
        The same ranking when no interleaving experiment runs or it owns none of these
        digests; otherwise with its digests replaced, and the team of every drafted item.
    """
    experiment = running_experiment(session)
    if experiment is None or experiment.kind != INTERLEAVE:
        return ranking, {}
    rows = [r for r, d in enumerate(ranking.digests) if d.arm.experiment_id == experiment.id]
    if not rows:
        return ranking, {}
    a, b = experiment_variants(experiment)
    other = [Arm(b.config if ranking.digests[r].arm.variant == a.name else a.config) for r in rows]
    # Imported here: scoring imports this module for its call site.
    from recsys.digests.scoring import RankedDigest, Ranking, rank_users

    # The whole chunk's ``since`` keeps the candidate block (and so its columns) the same.
    second = rank_users(
        session, model, [users[r] for r in rows], since, now,
        arms=other, seeds=[seeds[r] for r in rows], min_score=min_score,
    )  # fmt: skip
    digests, teams = list(ranking.digests), {}
    logged = Arm(InterleavedConfig(a=a.config, b=b.config), experiment.id, INTERLEAVED)
    for i, row in enumerate(rows):
        first = ranking.digests[row]
        pair = (first, second.digests[i])
        by_a, by_b = pair if first.arm.variant == a.name else pair[::-1]
        size = users[row].digest_size
        slate, scores, teams[row] = drafted(by_a, by_b, size, experiment.salt, seeds[row])
        digests[row] = RankedDigest(slate, scores, first.pool, logged)
    return Ranking(ranking.candidates, ranking.context, digests), teams


def drafted(
    by_a: RankedDigest, by_b: RankedDigest, size: int, salt: str, digest_id: int
) -> tuple[Slate, NDArray[np.float32], NDArray[np.str_]]:
    """The team-draft of two ranked digests: slate, each item's own team's score, teams."""
    cols, teams = team_draft(by_a.slate.cols, by_b.slate.cols, size, draft_rng(salt, digest_id))
    propensity = position_marginals(by_a.slate.cols, by_b.slate.cols, cols)
    score_of = {
        "a": dict(zip(by_a.slate.cols.tolist(), by_a.scores.tolist(), strict=True)),
        "b": dict(zip(by_b.slate.cols.tolist(), by_b.scores.tolist(), strict=True)),
    }
    scores = np.array([score_of[t][c] for c, t in zip(cols.tolist(), teams, strict=True)])
    slate = Slate(cols.astype(np.int32), propensity, np.zeros(len(cols), dtype=bool))
    return slate, scores.astype(np.float32), teams


def record_teams(session: Session, rows: Mapping[int, int], teams: Teams) -> None:
    """Write ``digest_items.team`` of the inserted digests (digest id -> ranking row).

    One statement per digest, its teams as one string indexed by position: updating item
    rows by id took 0.9 s for 500 digests of 10 on SQLite, as long as ranking them.
    """
    params = [
        {"for_digest": digest_id, "teams": "".join(teams[row].tolist())}
        for digest_id, row in rows.items()
        if row in teams
    ]
    if params:
        session.execute(_SET_TEAMS, params)
