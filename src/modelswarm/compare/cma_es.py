"""cma_es: CMA-ES (Hansen; the `cma` package) over the swarm's coefficients.

Starts at the uniform soup (1/n each: the centre of the experts) with step size SIGMA0,
bounds [-1.5, 1.5] like lorahub, loss -utility, cma's default population (4 + 3 ln n) asked
and scored as one batch per generation. A last generation that the budget cuts short is
scored but not told. cma's seed is seed + 1 (its seed 0 means "from the clock")."""

from __future__ import annotations

import numpy as np

from .base import Context, Outcome, best_of, register

SIGMA0 = 0.5
BOUND = 1.5


@register("cma_es", "search")
def run(ctx: Context) -> Outcome:
    """CMA-ES from the uniform soup, sigma 0.5, bounds [-1.5, 1.5]."""
    import cma

    es = cma.CMAEvolutionStrategy(np.full(ctx.n, 1.0 / ctx.n), SIGMA0,
                                  {"seed": ctx.seed + 1, "bounds": [-BOUND, BOUND], "verbose": -9})
    all_rows, all_scores = [], []
    generations = 0
    while ctx.remaining:
        xs = es.ask()
        full = len(xs) <= ctx.remaining
        xs = xs[:ctx.remaining]
        scores = ctx.score(np.array(xs))
        all_rows += [np.asarray(x) for x in xs]
        all_scores += scores.tolist()
        if full:
            es.tell(xs, [1e6 if np.isnan(s) else -float(s) for s in scores])
            generations += 1
    i = best_of(np.array(all_scores))
    return Outcome(val=float(all_scores[i]), candidate=all_rows[i].tolist(),
                   info={"generations": generations, "popsize": es.popsize})
