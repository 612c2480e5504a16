"""greedy_soup (Wortsman et al. 2022, "Model soups", Recipe 1).

Experts sorted by validation score; starting from the best, each next expert is added to
the soup (the uniform average of its members) if the soup's validation score does not get
worse. n evaluations to rank the experts, then one per candidate: at most 2n - 1."""

import numpy as np

from .base import Context, Outcome, register


@register("greedy_soup", "fixed")
def run(ctx: Context) -> Outcome:
    """Experts by validation score, each kept if the soup does not get worse."""
    eye = np.eye(ctx.n)
    single = ctx.score(eye)
    order = sorted(range(ctx.n), key=lambda i: -np.nan_to_num(single[i], nan=-np.inf))
    soup, best = [order[0]], float(single[order[0]])
    tried = []
    for j in order[1:]:
        row = eye[soup + [j]].mean(axis=0)
        s = float(ctx.score(row)[0])
        tried.append({"add": ctx.prep.bank.names[j], "val": s, "kept": bool(s >= best)})
        if s >= best:  # Wortsman: "if the held-out accuracy does not decrease"
            soup, best = soup + [j], s
    return Outcome(val=best, candidate=eye[soup].mean(axis=0).tolist(),
                   info={"soup": [ctx.prep.bank.names[i] for i in soup], "steps": tried})
