"""The GPU path in one go; run it through bench/gpu.sh, which documents the options.

  tests        the CUDA-marked tests (tests/test_cuda.py), float32 and bfloat16; on a
               machine without CUDA they skip, and "skipped" says so
  demo         a whole swarm with workers.device set: the SmolLM2 demo, or the tiny swarm
  evals_per_s  evaluations per second with 1, 2 and 4 actors on one device: on cuda they
               share the GPU (workers.num_gpus 1, 1/2, 1/4); speedup = rate(k) / rate(1)

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _common import ROOT, Timer, particle_rows, prepared, tmpdir

ACTORS = (1, 2, 4)


def say(text: str) -> None:
    print(f"[gpu.sh] {text}", file=sys.stderr, flush=True)


def machine(device: str) -> dict:
    import torch

    out = {"device": device, "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
           "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   bf16_supported=torch.cuda.is_bf16_supported())
    return out


def run_tests(tmp: Path) -> dict:
    """pytest -m cuda on tests/test_cuda.py, counted from its JUnit XML."""
    report = tmp / "cuda-tests.xml"
    env = {k: v for k, v in os.environ.items() if k != "MODELSWARM_TEST_DEVICE"}  # on cuda, or skipped
    with Timer() as t:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-rs",
                            "-p", "no:cacheprovider", f"--junitxml={report}"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    out: dict = {"rc": r.returncode, "seconds": round(t.seconds, 1)}
    if report.exists():
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        n, failed, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        out.update(passed=n - failed - errors - skipped, failed=failed + errors, skipped=skipped)
        reasons = {s.get("message") for s in suite.iter("skipped")}
        if reasons:
            out["skip_reasons"] = sorted(r for r in reasons if r)
    if r.returncode not in (0, 5):
        out["tail"] = r.stdout[-1500:]
    return out


def workers_for(device: str, dtype: str, count: int) -> dict:
    gpu = device == "cuda"
    return {"count": count, "num_cpus": 1, "device": device, "dtype": dtype,
            "num_gpus": round(1 / count, 4) if gpu else 0}


def run_demo(args, tmp: Path) -> dict:
    """A whole swarm through the CLI, workers on the device."""
    import yaml

    name = f"gpu-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.model == "smollm":
        cfg = yaml.safe_load((ROOT / "swarm_configs" / "demo.yaml").read_text())
        command = ["demo", "--config"]
    else:
        world = tmp / "world"
        cfg = {"base_model": str(world / "base_model"), "experts": str(world / "lora"), "seed": 0,
               "utility": {"kind": "multiple_choice", "data": str(world / "data" / "val.jsonl"),
                           "test_data": str(world / "data" / "test.jsonl"), "batch_sequences": 32, "head_rows": 32},
               "swarm": {"size": 6, "patience": 4, "restart_patience": 3}}
        command = ["run"]
    cfg["runs_dir"] = str(tmp / "runs")
    cfg["workers"] = workers_for(args.device, args.dtype, 1)
    if args.iterations:
        cfg["swarm"]["max_iterations"] = args.iterations
    path = tmp / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "modelswarm.cli", *command, str(path), "--name", name, "--no-live"]
    with Timer() as t:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out: dict = {"rc": r.returncode, "seconds": round(t.seconds, 1), "workers": cfg["workers"]}
    summary_file = tmp / "runs" / name / "summary.json"
    if r.returncode == 0 and summary_file.exists():
        s = json.loads(summary_file.read_text())
        out.update(best_val=s["best"]["score"], iterations=s["iterations"], evaluations=s["evaluations"],
                   best_test=s["baselines"].get("test", {}).get("global best"))
    else:
        out["error"] = (r.stderr.strip().splitlines() or ["?"])[-1]
    return out


def rate(prep, rows) -> float:
    import ray

    from modelswarm.search.evaluations import Evaluations, start_pool
    from modelswarm.run.progress import Progress
    from modelswarm.search.state import RunDir

    rd = RunDir(tmpdir() / "run")
    rd.path.mkdir(parents=True)
    evals = Evaluations(rd, lambda: start_pool(prep), Progress(prep.bank.names, 0, live=False))
    try:
        evals.pool
        evals.score(rows[0][:len(evals.pool.actors)] + 1e-3, iteration=0)  # warm-up: every actor's first pass
        n = 0
        with Timer() as t:
            for it, x in enumerate(rows):
                evals.score(x, iteration=it + 1)
                n += len(x)
        return n / t.seconds
    finally:
        evals.shutdown()
        ray.shutdown()


def rates(args, tmp: Path) -> dict:
    out: dict = {}
    rows = None
    for k in ACTORS:
        prep = prepared(args.model, k, tmp)
        cfg = prep.config
        cfg = dataclasses.replace(cfg, workers=dataclasses.replace(cfg.workers, **workers_for(args.device, args.dtype, k)))
        prep = dataclasses.replace(prep, config=cfg)
        rows = rows or particle_rows(len(prep.bank.names), args.size, args.rate_iterations)
        say(f"evaluations per second, {k} actor(s)")
        with contextlib.redirect_stdout(sys.stderr):  # the pool's progress lines: stdout is for the JSON
            out[str(k)] = round(rate(prep, rows), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="The GPU path: CUDA tests, the demo on the device, evals/s of 1, 2, 4 actors")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--model", choices=["tiny", "smollm"], default=None,
                    help="default: smollm on cuda, tiny on cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="for the demo and the rates")
    ap.add_argument("--iterations", type=int, default=None,
                    help="swarm iterations of the demo (default: the demo's own; 2 on cpu)")
    ap.add_argument("--size", type=int, default=8, help="particles per timed iteration")
    ap.add_argument("--rate-iterations", type=int, default=None, help="timed iterations per actor count")
    ap.add_argument("--skip", action="append", default=[], choices=["tests", "demo", "rates"])
    args = ap.parse_args()
    dry = args.device == "cpu"
    args.model = args.model or ("tiny" if dry else "smollm")
    args.iterations = args.iterations or (2 if dry else None)
    args.rate_iterations = args.rate_iterations or (2 if dry else 3)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.sh: no CUDA device here; for a dry run on the CPU: bench/gpu.sh --device cpu")
    tmp = tmpdir()
    out: dict = {"machine": machine(args.device), "model": args.model, "dtype": args.dtype, "dry_run": dry}
    with Timer() as total:
        if "tests" not in args.skip:
            say("CUDA-marked tests")
            out["tests"] = run_tests(tmp)
        if args.model == "tiny" and ({"demo", "rates"} - set(args.skip)):
            from modelswarm.tiny import build_world

            steps = 60 if dry else 300  # a dry run checks the path, not the experts: they train briefly
            say(f"tiny world ({steps} training steps per expert)")
            build_world(tmp / "world", steps=steps)
            out["tiny_train_steps"] = steps
        if "demo" not in args.skip:
            say(f"demo swarm on {args.device}")
            out["demo"] = run_demo(args, tmp)
        if "rates" not in args.skip:
            r = rates(args, tmp)
            out["evals_per_s"] = r
            out["speedup"] = {k: round(v / r["1"], 3) for k, v in r.items()}
            out["num_gpus_per_actor"] = {str(k): workers_for(args.device, args.dtype, k)["num_gpus"] for k in ACTORS}
    out["seconds"] = round(total.seconds, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
