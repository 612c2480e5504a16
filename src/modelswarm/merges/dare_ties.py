"""dare_ties (Yu et al. 2024, DARE, with TIES' sign election and disjoint mean).

Per tensor: drop each delta entry with probability 1 - density and rescale the kept ones by
1/density, then TIES' sign election and disjoint mean, weighted, onto W0 (PEFT's
merge_utils.dare_ties). The masks are random: each grid point draws them from torch's
generator seeded with (seed, grid index) (delta.py seeds it per merge), so a point is the
same merge in every worker, on resume and in the export. density and lambda from
DENSITIES x SCALES (9 evaluations)."""

from . import MergeMethod
from .ties import DENSITIES, SCALES, elect_and_merge  # the same grid as ties


def merge(deltas, weights, spec):
    import torch
    from peft.utils import merge_utils

    # PEFT before 0.19 (our floor is 0.14) computes DARE's 1/density rescale and discards
    # it, so the rescale is done here on PEFT's random pruning
    kept = torch.stack([merge_utils.prune(x, spec.density, method="random") / spec.density for x in deltas])
    return elect_and_merge(kept, weights)


def grid(seed: int) -> list[dict]:
    points = [(d, s) for d in DENSITIES for s in SCALES]
    return [{"scale": s, "density": d, "seed": 1000 * seed + k} for k, (d, s) in enumerate(points)]


METHOD = MergeMethod(
    name="dare_ties", merge=merge, grid=grid, seeded=True,
    summary="DARE-TIES of the expert deltas (seeded masks), density and lambda on validation.")
