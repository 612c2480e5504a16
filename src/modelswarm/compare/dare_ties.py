"""dare_ties (Yu et al. 2024, DARE, with TIES' sign election and disjoint mean).

Per tensor: drop each delta entry with probability 1 - density and rescale the kept ones by
1/density, then TIES' sign election and disjoint mean, times lambda, onto W0 (PEFT's
merge_utils.dare_ties). The masks are random: each grid point draws them from torch's
generator seeded with (seed, grid index), so a point is the same merge in every worker, on
resume and in the export. density and lambda from DENSITIES x SCALES (9 evaluations)."""

from ..candidates import DeltaMerge
from .base import Context, Outcome, register
from .grid import grid_search

DENSITIES = (0.2, 0.5, 0.8)
SCALES = (0.5, 1.0, 1.5)


@register("dare_ties", "merge", seeded=True)
def run(ctx: Context) -> Outcome:
    """DARE-TIES of the expert deltas (seeded masks), density and lambda on validation."""
    grid = [(d, s) for d in DENSITIES for s in SCALES]
    return grid_search(ctx, [DeltaMerge("dare_ties", scale=s, density=d, seed=1000 * ctx.seed + k)
                             for k, (d, s) in enumerate(grid)])
