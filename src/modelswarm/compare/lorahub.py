"""lorahub: LoraHub's gradient-free recipe (Huang et al. 2023, github sail-sg/lorahub).

nevergrad's NGOpt over one weight per expert, starting at 0, bounds [-1.5, 1.5], loss
-utility + 0.05 * mean |w| (LoraHub's default_l1_regularization), the budget as its
budget. LoraHub composes lora_A and lora_B with the same weights separately, which is the
swarm's coefficient space here. One difference: LoraHub asks one point at a time; here the
optimizer is told it has `workers` parallel workers (NGOpt may pick its algorithm by that)
and asks that many at once, so the pool stays busy. The answer is the evaluated point of
lowest loss (LoraHub's recommendation is by that loss, too)."""

from __future__ import annotations

import numpy as np

from .base import Context, Outcome, register

BOUND = 1.5
L1 = 0.05
FAILED_LOSS = 1e6


def loss(utility: float, w: np.ndarray) -> float:
    if np.isnan(utility):
        return FAILED_LOSS
    return float(-utility + L1 * np.mean(np.abs(w)))


def numpy2_shim() -> None:
    """nevergrad 1.0.12's MetaModel (which NGOpt picks for small budgets in few dimensions)
    calls float() on a (1,)-shaped prediction, an error since numpy 2.4. Its module gets a
    float that takes a one-element array; nothing else changes."""
    import builtins

    from nevergrad.optimization import metamodel

    if getattr(metamodel, "_modelswarm_float", False):
        return

    def _float(x=0.0):
        if isinstance(x, np.ndarray) and x.ndim > 0 and x.size == 1:
            x = x.reshape(())
        return builtins.float(x)

    metamodel.float = _float
    metamodel._modelswarm_float = True


@register("lorahub", "search")
def run(ctx: Context) -> Outcome:
    """nevergrad NGOpt from 0 in [-1.5, 1.5], loss -utility + 0.05 mean|w|."""
    import nevergrad as ng

    numpy2_shim()

    param = ng.p.Array(init=np.zeros(ctx.n), lower=-BOUND, upper=BOUND)
    param.random_state = np.random.RandomState(ctx.seed)
    opt = ng.optimizers.NGOpt(parametrization=param, budget=ctx.budget, num_workers=max(1, ctx.workers))
    best = (np.inf, None, np.nan)
    while ctx.remaining:
        cands = [opt.ask() for _ in range(min(ctx.workers, ctx.remaining))]
        rows = np.array([c.value for c in cands])
        scores = ctx.score(rows)
        for c, row, s in zip(cands, rows, scores):
            value = loss(s, row)
            opt.tell(c, value)
            if value < best[0]:
                best = (value, row, s)
    return Outcome(val=float(best[2]), candidate=best[1].tolist(),
                   info={"optimizer": opt.name if hasattr(opt, "name") else "NGOpt", "loss": best[0]})
