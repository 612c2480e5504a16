"""What early exit buys and costs: the same search with utility.early_exit off and on.

    python bench/early_exit.py --model smollm|tiny [--iterations 3]

Runs the swarm (the demo config for smollm) for the same number of iterations twice, with
early exit off (the default) and on, and reports the wall time (pool start-up included),
the workers' evaluation seconds, how many evaluations
stopped early, and the global best each search found. With early exit, a particle that
cannot beat its personal best stops being scored partway; the best it reports is then an
upper bound, so the swarm's path, and so its result, can differ from the full run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from _common import Timer, prepared, tmpdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="smollm")
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()

    import ray

    from modelswarm.run.coordinator import run_swarm
    from modelswarm.search.state import RunDir

    tmp = tmpdir()
    base = prepared(args.model, 2, tmp)
    out = {"model": args.model, "iterations": args.iterations, "examples": len(base.splits["val"])}
    for mode in (False, True):
        util = dataclasses.replace(base.config.utility, early_exit=mode)
        cfg = dataclasses.replace(base.config, utility=util, name=f"early-exit-{'on' if mode else 'off'}")
        prep = dataclasses.replace(base, config=cfg)
        with Timer() as t:
            run_swarm(prep, live=False, stop_after=args.iterations)
        rd = RunDir(cfg.run_dir)
        swarm, _ = rd.load_state(cfg)
        journal = rd.read_journal()
        out["on" if mode else "off"] = {
            "wall_s": round(t.seconds, 1), "evaluation_s": round(sum(e.seconds for e in journal), 1),
            "evaluations": len(journal),
            "stopped_early": sum(e.bound is not None for e in journal),
            "global_best_val": round(swarm.g_score, 4), "global_best": [round(c, 4) for c in swarm.g],
        }
        ray.shutdown()
    out["speedup_wall"] = round(out["off"]["wall_s"] / out["on"]["wall_s"], 2)
    out["speedup_evaluation"] = round(out["off"]["evaluation_s"] / out["on"]["evaluation_s"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
