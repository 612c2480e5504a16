"""linear: W0 + sum_j weights[j] * delta_j, each expert's delta with its own weight.

Not a compare row of its own (no grid): it is the swarm's coefficients applied to the
deltas B_j A_j instead of to A and B separately, and the tests' check that a one-hot merge
is that expert."""

from . import MergeMethod


def merge(deltas, weights, spec):
    from peft.utils import merge_utils

    return merge_utils.task_arithmetic(list(deltas), weights)


METHOD = MergeMethod(name="linear", merge=merge, reads=("scale",))
