"""A long run: does memory or resume time grow with the number of evaluations?

    python bench/soak.py --model tiny --evaluations 20000
    python bench/soak.py --model smollm --evaluations 500

Runs one swarm search (never stopping on a stall) on a pool of 2 workers until the journal
holds the asked-for number of evaluations, in chunks of iterations on the same pool. After
the warm-up chunk and at the end it reads the driver's and each worker's current RSS; then
it times a resume from the final journal and state (what `modelswarm resume` does before
its first new evaluation). Goals: RSS growth after warm-up under 5%, resume under 5 s for a
20,000-line journal.
"""

from __future__ import annotations

import argparse
import json
import time

from _common import prepared, tmpdir


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="tiny")
    ap.add_argument("--evaluations", type=int, default=20000)
    ap.add_argument("--size", type=int, default=20, help="particles")
    ap.add_argument("--warmup", type=int, default=10, help="iterations before the first reading")
    ap.add_argument("--chunk", type=int, default=50, help="iterations per chunk")
    args = ap.parse_args()

    import ray

    from modelswarm.run.coordinator import run_swarm
    from modelswarm.search.evaluations import start_pool
    from modelswarm.search.state import RunDir

    tmp = tmpdir()
    prep = prepared(args.model, 2, tmp)
    iterations = -(-args.evaluations // args.size) + 1
    config = prep.config.replace(swarm=prep.config.swarm.replace(
        # never finishes: the soak measures the search, and a resume of an unfinished run
        size=args.size, max_iterations=iterations + 1, patience=iterations + 2,
        restart_patience=1_000_000, anchors=[]))
    prep = type(prep)(config=config, bank=prep.bank, splits=prep.splits, config_path=prep.config_path)
    pool = start_pool(prep)
    rd = RunDir(config.run_dir)

    def readings() -> dict:
        workers = [ray.get(a.memory.remote(), timeout=120)["current_rss_mb"] for a in pool.actors]
        lines = sum(1 for _ in open(rd.journal_file)) if rd.journal_file.exists() else 0
        return {"journal_lines": lines, "driver_rss_mb": round(current_rss_mb(), 1),
                "worker_rss_mb": [round(w, 1) for w in workers]}

    t0 = time.perf_counter()
    done = 0
    run_swarm(prep, pool=pool, live=False, stop_after=args.warmup)
    done = args.warmup
    warm = readings()
    while done < iterations:
        done = min(iterations, done + args.chunk)
        summary = run_swarm(prep, pool=pool, live=False, resume=True, stop_after=done)
    end = readings()
    run_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    run_swarm(prep, pool=pool, live=False, resume=True, stop_after=0)  # load state + journal, run nothing
    resume_s = time.perf_counter() - t1
    pool.shutdown()

    growth = lambda a, b: round((b - a) / a, 4)  # noqa: E731
    print(json.dumps({
        "model": args.model, "status": summary.get("status"), "run_s": round(run_s, 1),
        "warm": warm, "end": end,
        "driver_rss_growth": growth(warm["driver_rss_mb"], end["driver_rss_mb"]),
        "worker_rss_growth": [growth(a, b) for a, b in zip(warm["worker_rss_mb"], end["worker_rss_mb"])],
        "journal_mb": round(rd.journal_file.stat().st_size / 2**20, 2),
        "resume_s": round(resume_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
