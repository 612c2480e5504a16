"""task_arithmetic (Ilharco et al. 2023): W0 + lambda * sum_j delta_j.

delta_j = B_j A_j * scaling for LoRA experts, W_j - W0 for full ones (delta.py). lambda is
picked on validation from SCALES (5 evaluations); 1/n would be the delta-space average."""

from ..candidates import DeltaMerge
from .base import Context, Outcome, register
from .grid import grid_search

SCALES = (0.2, 0.4, 0.6, 0.8, 1.0)


@register("task_arithmetic", "merge")
def run(ctx: Context) -> Outcome:
    """W0 + lambda * sum of the expert deltas, lambda on validation."""
    return grid_search(ctx, [DeltaMerge("task_arithmetic", scale=s) for s in SCALES])
