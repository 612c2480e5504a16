"""bo: Bayesian optimisation (optuna's TPE sampler, ask-tell) over the swarm's coefficients.

The searches' box [-1.5, 1.5]^n and budget; maximise the utility. The first point is the
uniform soup (1/n each), where cma_es starts; then TPE (multivariate: one density over all
the coefficients, not one per coefficient) after TPE_STARTUP seeded random points. It asks
`workers` points at once so the pool stays busy; constant_liar makes the points of one batch
differ (a point asked and not yet told counts as a poor one, so the next ask avoids it). A
failed evaluation is told as failed: TPE leaves it out. Seeded with the run's seed; the same
seed, the same points."""

from __future__ import annotations

import math

import numpy as np

from .base import Context, Outcome, best_of, register

BOUND = 1.5
TPE_STARTUP = 10  # optuna's default n_startup_trials: random points before the model


def _study(seed: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP, multivariate=True,
                                         constant_liar=True)
    return optuna.create_study(direction="maximize", sampler=sampler)


@register("bo", "search")
def run(ctx: Context) -> Outcome:
    """optuna TPE (multivariate, constant liar) from the uniform soup, in [-1.5, 1.5]."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    names = [f"w{i:03d}" for i in range(ctx.n)]  # zero-padded: optuna keeps params by name
    space = {name: FloatDistribution(-BOUND, BOUND) for name in names}
    study = _study(ctx.seed)
    study.enqueue_trial({name: 1.0 / ctx.n for name in names})
    all_rows, all_scores = [], []
    while ctx.remaining:
        trials = [study.ask(space) for _ in range(min(max(1, ctx.workers), ctx.remaining))]
        rows = np.array([[t.params[name] for name in names] for t in trials])
        scores = ctx.score(rows)
        for t, s in zip(trials, scores):
            if math.isnan(s):
                study.tell(t, state=TrialState.FAIL)
            else:
                study.tell(t, float(s))
        all_rows += list(rows)
        all_scores += scores.tolist()
    i = best_of(np.array(all_scores))
    return Outcome(val=float(all_scores[i]), candidate=np.asarray(all_rows[i]).tolist(),
                   info={"sampler": "TPESampler(multivariate, constant_liar)", "batch": max(1, ctx.workers)})
