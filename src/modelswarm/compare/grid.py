"""The delta-space merges' shared step: score a documented grid, keep the best point.

Every grid point is one counted validation evaluation; the grid is scored in one batch on
the pool. Ties go to the first point of the grid."""

from __future__ import annotations

from ..candidates import DeltaMerge
from .base import Context, Outcome, best_of


def grid_search(ctx: Context, specs: list[DeltaMerge]) -> Outcome:
    scores = ctx.score(specs)
    i = best_of(scores)
    return Outcome(val=float(scores[i]), candidate=specs[i],
                   info={"grid": [{**s.to_dict(), "val": float(v)} for s, v in zip(specs, scores)]})
