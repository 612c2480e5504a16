"""The search loop: PSO on coefficients, evaluations on the Ray pool, journal and snapshots.

    Prepared (prepare.py) -> the run directory, locked (search/state.open_run) -> the swarm, new or
    resumed -> [score -> record -> snapshot] per iteration until done -> the end (finish.py)

Every finished evaluation is appended to evaluations.jsonl before it is used, and the
swarm is snapshotted after every iteration, so a killed run resumes where it stopped and
replays (never recomputes) what had finished.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from ..report.baselines import zero_is_base
from ..errors import UserError
from ..search.evaluations import Evaluations, start_pool
from ..cluster.pool import ClusterLost, EvaluatorPool
from .prepare import Prepared
from .progress import Progress
from .finish import finish
from ..search.state import open_run
from ..search.start import coefficient_groups, off_the_simplex
from ..search.swarm import Swarm


def run_swarm(
    prep: Prepared,
    address: Optional[str] = None,
    resume: bool = False,
    live: Optional[bool] = None,
    stop_after: Optional[int] = None,
    pool: Optional[EvaluatorPool] = None,
) -> dict[str, Any]:
    """Run (or resume) a search to the end; returns the summary. stop_after: iterations, for tests.
    pool: an already started pool to evaluate on (modelswarm compare); it is left running.

    Iteration 0 scores the starting swarm; each later one scores the particles that the swarm
    proposes (all but the dropped ones), each against its personal best."""
    config, bank = prep.config, prep.bank
    with open_run(config, bank.names, bank.sources, prep.config_path, resume) as (rd, saved):
        if saved:
            if coefficient_groups(config.swarm) > 1 and not saved["swarm"].get("group_draws"):
                raise UserError(rd.state_file, "a layer-group swarm saved by a modelswarm whose groups shared "
                                               "their random draws (so they never moved apart); start a new run")
            swarm = Swarm.from_json(saved["swarm"], config.swarm)
        else:
            swarm = Swarm.create(len(bank.names), config.swarm, config.seed, base_point=zero_is_base(bank.layout))
            if scaled := off_the_simplex(swarm.x, len(bank.names)):
                print(f"starting swarm: {scaled} of {swarm.size} particles do not sum to 1 (the base anchor and the "
                      "crossover children descended from it; swarm.anchors: [] is the official start)", flush=True)
        elapsed_before = float(saved.get("elapsed_s", 0.0))
        t0 = time.monotonic()

        def snapshot(status: str) -> None:
            rd.save_state(swarm, {"status": status, "elapsed_s": elapsed_before + time.monotonic() - t0,
                                  "experts": list(bank.names)})

        progress = Progress(bank.names, config.swarm.max_iterations, live=live)
        evals = Evaluations(rd, (lambda: pool) if pool is not None else lambda: start_pool(prep, address, progress.message),
                            progress, secondary=config.utility.tie_break)
        try:
            with progress:
                while not swarm.started or (not swarm.done and (stop_after is None or swarm.iteration < stop_after)):
                    if swarm.started:
                        x, iteration = swarm.propose(), swarm.iteration + 1
                        chosen = np.flatnonzero(swarm.evaluate)  # all but the dropped (drop_iteration/particle)
                        bounds = swarm.p_scores[chosen]
                    else:
                        x, iteration, chosen, bounds = swarm.x, 0, np.arange(swarm.size), None
                    scores = np.full(swarm.size, np.nan)  # nan: failed or not evaluated, as the swarm reads it
                    ties = np.full(swarm.size, np.nan)  # utility.tie_break's secondary scores; nan: none
                    if len(chosen):
                        results = evals.score(x[chosen], iteration=iteration, bounds=bounds,
                                              particles=chosen)
                        scores[chosen] = [ev.score for ev in results]  # a failed evaluation's score is nan
                        ties[chosen] = [np.nan if ev.secondary is None else ev.secondary for ev in results]
                    if swarm.started:
                        swarm.record(scores, ties)
                    elif np.isnan(scores).all():
                        raise UserError(config.utility.data, f"every initial expert failed to evaluate: {results[0].error}")
                    else:
                        swarm.start(scores, ties)
                    snapshot("running")
                    progress.iteration(swarm)
                if not swarm.done:
                    return {"status": "stopped", "iteration": swarm.iteration}
                progress.message("exporting best/")
                summary = finish(prep, rd, swarm, evals, elapsed_before + time.monotonic() - t0)
                snapshot("finished")
                return summary
        except ClusterLost as exc:
            raise UserError(rd.path, f"{exc.problem}: the run is saved up to its last complete iteration; once the "
                                     f"cluster has room again, resume with `modelswarm resume {rd.path}`") from None
        finally:
            if pool is None:
                evals.shutdown()
