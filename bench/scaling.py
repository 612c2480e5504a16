"""Evaluations per second with 1 and 2 workers, and on a two-node local Ray cluster.

    python bench/scaling.py --model tiny|smollm [--size 10] [--iterations 2]

The two-node cluster is real Ray: `ray start --head` and `ray start --address` on this
machine, one CPU each, so the two workers land on different raylets; modelswarm joins it
with --address like any cluster. efficiency = rate(2 workers) / (2 * rate(1 worker)).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from _common import Timer, particle_rows, prepared, tmpdir

PORT = 6391


def rate(prep, rows, address=None) -> tuple[float, dict]:
    import ray

    from modelswarm.search.evaluations import Evaluations, start_pool
    from modelswarm.run.progress import Progress
    from modelswarm.search.state import RunDir

    rd = RunDir(tmpdir() / "run")
    rd.path.mkdir(parents=True)
    evals = Evaluations(rd, lambda: start_pool(prep, address), Progress(prep.bank.names, 0, live=False))
    evals.pool
    evals.score(rows[0][:2] + 1e-3, iteration=0)  # warm-up
    n = 0
    with Timer() as t:
        for it, x in enumerate(rows):
            evals.score(x, iteration=it + 1)
            n += len(x)
    nodes = {}
    for actor in evals.pool.actors:
        node = ray.get(actor.node.remote(), timeout=60)
        nodes[node] = nodes.get(node, 0) + 1
    evals.shutdown()
    ray.shutdown()
    return n / t.seconds, nodes


def ray_cli(*args: str) -> None:
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    subprocess.run([ray_bin, *args], check=True, capture_output=True, text=True, timeout=300, env=os.environ)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="tiny")
    ap.add_argument("--size", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--two-nodes-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.two_nodes_only:
        return two_nodes(args)

    tmp = tmpdir()
    out = {"model": args.model}
    rows = None
    for workers in (1, 2):
        prep = prepared(args.model, workers, tmp / f"w{workers}")
        rows = rows or particle_rows(len(prep.bank.names), args.size, args.iterations)
        out[f"evals_per_s_{workers}_worker"], _ = rate(prep, rows)
    out["efficiency_2_workers"] = out["evals_per_s_2_worker"] / (2 * out["evals_per_s_1_worker"])

    # Ray reads its auth settings once per process: the cluster part runs in a fresh one
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "token"  # as Ray >= 2.59 wants: one token for nodes and driver
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    cmd = [sys.executable, __file__, "--model", args.model, "--size", str(args.size),
           "--iterations", str(args.iterations), "--two-nodes-only"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    out.update(json.loads(res.stdout.strip().splitlines()[-1]))
    out["efficiency_two_nodes"] = out["evals_per_s_two_nodes"] / (2 * out["evals_per_s_1_worker"])
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}, indent=2))


def two_nodes(args) -> None:
    tmp = tmpdir()
    try:
        ray_cli("start", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false",
                '--resources={"node_a": 1}')
        ray_cli("start", f"--address=127.0.0.1:{PORT}", "--num-cpus=1", '--resources={"node_b": 1}')
        prep = prepared(args.model, 2, tmp / "cluster")
        rows = particle_rows(len(prep.bank.names), args.size, args.iterations)
        r, nodes = rate(prep, rows, address=f"127.0.0.1:{PORT}")
    finally:
        ray_cli("stop", "--force")
    print(json.dumps({"evals_per_s_two_nodes": r, "workers_per_node": sorted(nodes.values())}))


if __name__ == "__main__":
    main()
