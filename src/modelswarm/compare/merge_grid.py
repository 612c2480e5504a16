"""The delta-space merges' rows: every method in merges/ with a grid gets one.

A row scores its method's documented grid on validation in one batch on the pool (each point
one counted evaluation) and keeps the best point; ties go to the first point of the grid.
The method's module says what the merge is and why its grid is what it is."""

from __future__ import annotations

from ..weights.candidates import DeltaMerge
from ..merges import METHODS, MergeMethod
from .base import Context, Outcome, best_of, register


def grid_search(ctx: Context, specs: list[DeltaMerge]) -> Outcome:
    scores = ctx.score(specs)
    i = best_of(scores)
    return Outcome(val=float(scores[i]), candidate=specs[i],
                   info={"grid": [{**s.to_dict(), "val": float(v)} for s, v in zip(specs, scores)]})


def row(method: MergeMethod):
    def run(ctx: Context) -> Outcome:
        return grid_search(ctx, [DeltaMerge(method.name, **p) for p in method.grid(ctx.seed)])

    run.__doc__ = method.summary
    return run


for _method in METHODS.values():
    if _method.grid is not None:
        register(_method.name, "merge", seeded=_method.seeded)(row(_method))
