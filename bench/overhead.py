"""Swarm-iteration wall time vs the pure forward/generation time of the same evaluations.

    python bench/overhead.py --model tiny|smollm [--workers 1|2] [--size 10] [--iterations 3]

"pure" = utility.score on an already-loaded, already-composed model, one thread (what each
worker has). An iteration through modelswarm adds composition, Ray dispatch, journaling
(fsync) and bookkeeping.
  ratio          = iteration_wall * workers / pure_sum: against the evaluations one after
                   another in this process on an otherwise idle machine (1.00 = no overhead;
                   goal <= 1.10). With as many workers as cores it also holds what the cores
                   lose by running side by side, with the driver and Ray beside them.
  ratio_parallel = iteration_wall / pure_parallel_wall: against `workers` plain processes
                   (no Ray, no journal) scoring the same particles side by side, dealt out
                   round-robin: the hardware's share taken out, what is left is modelswarm's.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics

from _common import Timer, particle_rows, prepared, tmpdir


def warm_evaluator(prep, row):
    """An Evaluator on one thread, as each worker has, past its first (allocating) pass."""
    import torch

    from modelswarm.cluster.worker import Evaluator

    torch.set_num_threads(1)
    ev = Evaluator(prep.config.base_model, prep.bank.layout, prep.bank.matrix, prep.config.utility, prep.splits,
                   num_threads=1)
    ev.composer.apply(row)
    ev.utility.score(ev.model, ev.tokenizer, prep.splits["val"])
    return ev


def scoring_seconds(ev, particles, examples) -> float:
    """Seconds of utility.score over these particles; composition stays off the clock."""
    total = 0.0
    for row in particles:
        ev.composer.apply(row)
        with Timer() as t:
            ev.utility.score(ev.model, ev.tokenizer, examples)
        total += t.seconds
    return total


def _pure_worker(model, workers, index, rows, tmp, barrier, out):
    """One plain process: its round-robin share of each iteration, the processes in step."""
    prep = prepared(model, workers, tmp)
    ev = warm_evaluator(prep, rows[0][0])
    times = []
    for x in rows:
        barrier.wait()
        times.append(scoring_seconds(ev, x[index::workers], prep.splits["val"]))
    out.put((index, times))


def pure_parallel(model: str, workers: int, rows, tmp) -> list[float]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_pure_worker, args=(model, workers, i, rows, tmp, barrier, out)) for i in range(workers)]
    for p in procs:
        p.start()
    per = {}
    while len(per) < workers:  # a child that dies (it has happened, silently) must not hang the bench
        try:
            index, times = out.get(timeout=5)
            per[index] = times
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs) or all(p.exitcode is not None for p in procs):
                for p in procs:
                    p.kill()
                raise SystemExit(f"a plain baseline process died (exit codes {[p.exitcode for p in procs]})")
    for p in procs:
        p.join()
    return [max(per[i][it] for i in range(workers)) for it in range(len(rows))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="tiny")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()

    from modelswarm.search.evaluations import Evaluations, start_pool
    from modelswarm.run.progress import Progress
    from modelswarm.search.state import RunDir
    tmp = tmpdir()
    prep = prepared(args.model, args.workers, tmp)
    rows = particle_rows(len(prep.bank.names), args.size, args.iterations)

    # modelswarm: the coordinator's evaluation path, pool already warm
    rd = RunDir(tmp / "run")
    rd.path.mkdir(parents=True)
    evals = Evaluations(rd, lambda: start_pool(prep), Progress(prep.bank.names, 0, live=False))
    evals.pool  # start the actors outside the timing
    evals.score(rows[0][:args.workers] + 1e-3, iteration=0)  # warm-up on other positions: first passes allocate
    swarm_times = []
    for it, x in enumerate(rows):
        with Timer() as t:
            evals.score(x, iteration=it + 1)
        swarm_times.append(t.seconds)
    evals.shutdown()

    # pure: the same evaluations, model loaded and composed before the clock starts
    ev = warm_evaluator(prep, rows[0][0])
    pure_times = [scoring_seconds(ev, x, prep.splits["val"]) for x in rows]

    parallel_times = pure_parallel(args.model, args.workers, rows, tmp) if args.workers > 1 else pure_times
    ratios = [s * args.workers / p for s, p in zip(swarm_times, pure_times)]
    result = {
        "model": args.model, "workers": args.workers, "particles": args.size, "examples": len(prep.splits["val"]),
        "iteration_wall_s": [round(s, 3) for s in swarm_times], "pure_sum_s": [round(p, 3) for p in pure_times],
        "ratio_per_iteration": [round(r, 3) for r in ratios],
        "ratio": round(sum(s * args.workers for s in swarm_times) / sum(pure_times), 3),
        "ratio_median": round(statistics.median(ratios), 3),  # robust to one disturbed iteration
        "pure_parallel_wall_s": [round(p, 3) for p in parallel_times],
        "ratio_parallel": round(sum(swarm_times) / sum(parallel_times), 3),
        "ratio_parallel_median": round(statistics.median(s / p for s, p in zip(swarm_times, parallel_times)), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
