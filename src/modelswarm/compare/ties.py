"""ties (Yadav et al. 2023, TIES-Merging): trim, elect sign, disjoint mean, scaled.

Per tensor: keep each delta's top `density` fraction by magnitude, elect the sign of the
summed trimmed deltas, average the entries that agree with it, and add lambda times that to
W0 (PEFT's merge_utils.ties, checked against a direct computation in the tests). density
and lambda are picked on validation from DENSITIES x SCALES (9 evaluations); the paper's
default is density 0.2 with lambda near 1."""

from ..candidates import DeltaMerge
from .base import Context, Outcome, register
from .grid import grid_search

DENSITIES = (0.2, 0.5, 0.8)
SCALES = (0.5, 1.0, 1.5)


@register("ties", "merge")
def run(ctx: Context) -> Outcome:
    """TIES-Merging of the expert deltas, density and lambda on validation."""
    return grid_search(ctx, [DeltaMerge("ties", scale=s, density=d) for d in DENSITIES for s in SCALES])
