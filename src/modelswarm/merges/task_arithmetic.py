"""task_arithmetic (Ilharco et al. 2023): W0 + lambda * sum_j delta_j.

delta_j = B_j A_j * scaling for LoRA experts, W_j - W0 for full ones (delta.py). lambda is
picked on validation from SCALES (5 evaluations); 1/n would be the delta-space average.
The arithmetic is PEFT's merge_utils.task_arithmetic."""

from . import MergeMethod

SCALES = (0.2, 0.4, 0.6, 0.8, 1.0)


def merge(deltas, weights, spec):
    from peft.utils import merge_utils

    return merge_utils.task_arithmetic(list(deltas), weights)


METHOD = MergeMethod(
    name="task_arithmetic", merge=merge, reads=("scale",),
    grid=lambda seed: [{"scale": s} for s in SCALES],
    summary="W0 + lambda * sum of the expert deltas, lambda on validation.")
