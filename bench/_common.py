"""Shared set-up for the benchmarks: the tiny world or the SmolLM2 demo, and a fresh pool."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from modelswarm import OFFLINE_ENV  # noqa: E402

for k, v in OFFLINE_ENV.items():
    os.environ.setdefault(k, v)

import numpy as np  # noqa: E402

from modelswarm.config import load_config  # noqa: E402
from modelswarm.run.prepare import Prepared, prepare  # noqa: E402


def prepared(model: str, workers: int, tmp: Path) -> Prepared:
    """tiny: the 2-layer world built in tmp; smollm: swarm_configs/demo.yaml on SmolLM2-135M."""
    over = {"name": "bench", "runs_dir": str(tmp / "runs"), "workers": {"count": workers, "num_cpus": 1}}
    if model == "tiny":
        from modelswarm.tiny import build_world

        root = tmp / "world"
        if (root / "data" / "test.jsonl").exists():  # built by the parent process: same world
            w = {"base": root / "base_model", "experts": root / "lora", "val": root / "data" / "val.jsonl"}
        else:
            w = build_world(root)
        import yaml

        cfg = tmp / "tiny.yaml"
        cfg.write_text(yaml.safe_dump({
            "base_model": str(w["base"]), "experts": str(w["experts"]),
            "utility": {"kind": "multiple_choice", "data": str(w["val"]), "batch_sequences": 64, "head_rows": 64},
        }))
        return prepare(load_config(cfg, over), cfg)
    from modelswarm.demo.smollm import ensure_base

    os.chdir(ROOT)
    ensure_base()
    cfg = ROOT / "swarm_configs" / "demo.yaml"
    return prepare(load_config(cfg, over), cfg)


def particle_rows(n_experts: int, size: int, iterations: int, seed: int = 0) -> list[np.ndarray]:
    """Positions a real swarm visits: the initial swarm, then proposals under random scores."""
    from modelswarm.config import SwarmParams
    from modelswarm.search.swarm import Swarm

    s = Swarm.create(n_experts, SwarmParams(size=size), seed)
    rng = np.random.default_rng(seed)
    out = [s.x.copy()]
    s.start(rng.random(s.size))
    for _ in range(iterations - 1):
        out.append(s.propose().copy())
        s.record(rng.random(s.size))
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="modelswarm-bench-"))
