"""best_expert: every expert alone, the best on validation (n evaluations)."""

import numpy as np

from .base import Context, Outcome, best_of, register


@register("best_expert", "fixed")
def run(ctx: Context) -> Outcome:
    """The single expert with the best validation score."""
    scores = ctx.score(np.eye(ctx.n))
    i = best_of(scores)
    return Outcome(val=float(scores[i]), candidate=np.eye(ctx.n)[i].tolist(),
                   info={"expert": ctx.prep.bank.names[i],
                         "experts_val": dict(zip(ctx.prep.bank.names, scores.tolist()))})
