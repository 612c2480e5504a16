"""uniform_soup: the average of all experts, 1/n each (1 evaluation).

In the swarm's coefficient space: for LoRA experts A and B are averaged separately, as
Model Swarms composes them (not the average of the B A products; task_arithmetic is that)."""

import numpy as np

from .base import Context, Outcome, register


@register("uniform_soup", "fixed")
def run(ctx: Context) -> Outcome:
    """Every expert weighted 1/n."""
    row = np.full(ctx.n, 1.0 / ctx.n)
    return Outcome(val=float(ctx.score(row)[0]), candidate=row.tolist())
