"""random_search: uniform points in lorahub's box [-1.5, 1.5]^n, the best on validation.

The floor any search should clear: the budget's points drawn at once from a seeded
numpy generator and scored as one batch."""

from __future__ import annotations

import numpy as np

from .base import Context, Outcome, best_of, register

BOUND = 1.5


@register("random_search", "search")
def run(ctx: Context) -> Outcome:
    """Uniform random coefficients in [-1.5, 1.5], the best on validation."""
    rows = np.random.default_rng(ctx.seed).uniform(-BOUND, BOUND, size=(ctx.remaining, ctx.n))
    scores = ctx.score(rows)
    i = best_of(scores)
    return Outcome(val=float(scores[i]), candidate=rows[i].tolist())
