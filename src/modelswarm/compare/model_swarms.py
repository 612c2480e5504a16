"""model_swarms: the search itself, as a normal run directory inside the compare directory
(COMPARE_DIR/model_swarms-seed<S>, resumable like any run), or an existing run directory.

It runs on the compare's pool. Its count is the validation evaluations of its search (the
journal's entries with an iteration; a point it revisits is scored once and counted once),
which is the budget the searches get. Its seconds are the run's elapsed_s: the search,
without the end-of-run scoring of personal bests and baselines.

The run scores nothing on test itself: the compare scores every method's answer on test in
one batch (runner._score_test), and a run's own end-of-run test scoring (every personal
best and every baseline: 19 of the demo's 560-example test passes, about 100 s on 2 cores)
would only slow the table down."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from ..search.state import RunDir
from .base import Context, Outcome, register


@register("model_swarms", "swarm")
def run(ctx: Context) -> Outcome:
    """Model Swarms (PSO over the experts' coefficients)."""
    return swarm_outcome(ctx, "model_swarms", ctx.swarm_run)


def swarm_outcome(ctx: Context, method: str, existing: Optional[Path] = None, **swarm: Any) -> Outcome:
    """Run (or resume) the search as COMPARE_DIR/<method>-seed<S> with the config's swarm
    section updated by `swarm`, or read an existing run directory; its answer and count."""
    from ..run.coordinator import run_swarm

    if existing is not None:
        rd = RunDir(existing)
        summary = rd.read_json(rd.summary_file)
    else:
        name = f"{method}-seed{ctx.seed}"
        cfg = ctx.prep.config.replace(runs_dir=str(ctx.dir), name=name, seed=ctx.seed)
        if swarm:
            cfg = cfg.replace(swarm=cfg.swarm.replace(**swarm))
        val_only = {split: ex for split, ex in ctx.prep.splits.items() if split != "test"}
        prep = replace(ctx.prep, config=cfg, splits=val_only)
        rd = RunDir(ctx.dir / name)
        summary = run_swarm(prep, resume=rd.exists(), live=False, pool=ctx.pool)
    search = [e for e in rd.read_journal() if e.split == "val" and e.iteration is not None]
    ctx.used = len(search)
    ctx.curve = [math.nan if e.failed else e.score for e in search]
    test = summary.get("baselines", {}).get("test", {}).get("global best")
    return Outcome(val=float(summary["best"]["score"]), candidate=list(summary["best"]["coefficients"]),
                   info={"run_dir": str(rd.path), "iterations": summary["iterations"], "test": test,
                         "seconds": summary.get("elapsed_s")})
