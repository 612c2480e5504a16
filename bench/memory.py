"""Peak RSS per worker against the budget: base model + expert bank + 20%.

    python bench/memory.py --model smollm|tiny [--workers 2]

A worker's RSS also holds the Python interpreter, torch and transformers (a few hundred MB
whatever the model); the budget is checked on what the worker adds on top of that
baseline (measured in the actor before the model and bank are loaded), and the full peak
is reported beside it. The bank is mapped from Ray's shared object store, so two workers
on one node share its pages.
"""

from __future__ import annotations

import argparse
import json

from _common import particle_rows, prepared, tmpdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="smollm")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import ray
    from safetensors import safe_open

    from modelswarm.search.evaluations import Evaluations, start_pool
    from modelswarm.run.progress import Progress
    from modelswarm.search.state import RunDir

    tmp = tmpdir()
    prep = prepared(args.model, args.workers, tmp)
    rows = particle_rows(len(prep.bank.names), 4, 2)
    rd = RunDir(tmp / "run")
    rd.path.mkdir(parents=True)
    evals = Evaluations(rd, lambda: start_pool(prep), Progress(prep.bank.names, 0, live=False))
    for it, x in enumerate(rows):
        evals.score(x, iteration=it + 1)
    mems = [ray.get(a.memory.remote(), timeout=60) for a in evals.pool.actors]
    evals.shutdown()

    base_bytes = 0
    with safe_open(f"{prep.config.base_model}/model.safetensors", framework="pt") as f:
        for k in f.keys():
            sl = f.get_slice(k)
            n = 1
            for d in sl.get_shape():
                n *= d
            base_bytes += n * 4  # float32 in the worker
    bank_mb = prep.bank.matrix.nbytes / 2**20
    base_mb = base_bytes / 2**20
    budget = (base_mb + bank_mb) * 1.2
    added = [m["peak_rss_mb"] - m["baseline_rss_mb"] for m in mems]
    print(json.dumps({
        "model": args.model, "base_model_mb": round(base_mb, 1), "expert_bank_mb": round(bank_mb, 1),
        "budget_mb (base+bank+20%)": round(budget, 1),
        "worker_peak_rss_mb": [round(m["peak_rss_mb"], 1) for m in mems],
        "worker_baseline_rss_mb": [round(m["baseline_rss_mb"], 1) for m in mems],
        "worker_added_mb": [round(a, 1) for a in added],
        "worker_current_rss_mb (after the evaluations)": [round(m["current_rss_mb"], 1) for m in mems],
        "current_added_over_budget": [round((m["current_rss_mb"] - m["baseline_rss_mb"]) / budget, 3) for m in mems],
        "added_over_budget": [round(a / budget, 3) for a in added],
        "within_budget": all(a <= budget for a in added),
    }, indent=2))


if __name__ == "__main__":
    main()
