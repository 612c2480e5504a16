"""ties (Yadav et al. 2023, TIES-Merging): trim, elect sign, disjoint mean, scaled.

Per tensor: keep each delta's top `density` fraction by magnitude, elect the sign of the
summed trimmed deltas, average the weighted entries that agree with it, and add that to W0
(PEFT's merge_utils.ties step by step, checked against a direct computation in the tests).
density and lambda are picked on validation from DENSITIES x SCALES (9 evaluations); the
paper's default is density 0.2 with lambda near 1."""

from . import MergeMethod

DENSITIES = (0.2, 0.5, 0.8)
SCALES = (0.5, 1.0, 1.5)


def trim(x, density: float):
    """TIES' trim: keep the top `density` of |x|. It is PEFT's magnitude pruning with the
    threshold found by kthvalue instead of a topk over the kept entries, which selects the
    same entries (but for exact ties in |x|) and is 2 to 7 times faster on CPU, where the
    topk took most of a TIES merge's time (tests/test_delta.py checks the formula)."""
    import torch

    k = int(density * x.numel())
    if k <= 0:
        return torch.zeros_like(x)
    if k >= x.numel():
        return x
    threshold = x.abs().flatten().kthvalue(x.numel() - k + 1).values
    return torch.where(x.abs() >= threshold, x, torch.zeros_like(x))


def elect_and_merge(kept, weights):
    """merge_utils.ties' last steps: the sign elected on the unweighted kept deltas, the
    weighted deltas that agree with it averaged."""
    from peft.utils import merge_utils

    sign = merge_utils.calculate_majority_sign_mask(kept, method="total")
    return merge_utils.disjoint_merge(kept * merge_utils.reshape_weight_task_tensors(kept, weights), sign)


def merge(deltas, weights, spec):
    import torch

    return elect_and_merge(torch.stack([trim(x, spec.density) for x in deltas]), weights)


METHOD = MergeMethod(
    name="ties", merge=merge, reads=("scale", "density"),
    grid=lambda seed: [{"scale": s, "density": d} for d in DENSITIES for s in SCALES],
    summary="TIES-Merging of the expert deltas, density and lambda on validation.")
