"""Shared fixtures: a tiny random Llama world built once per session, and a local Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelswarm import OFFLINE_ENV

for _k, _v in {**OFFLINE_ENV, "RAY_DEDUP_LOGS": "0"}.items():
    os.environ.setdefault(_k, _v)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU, skipped without one (bench/gpu.sh runs them)")


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    """base_model/, lora/{down,same,up}, data/{val,test}.jsonl: specialists on digit skills."""
    from modelswarm.tiny import build_world

    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def evaluator(world):
    """One worker's Evaluator on the tiny world, scoring multiple_choice on val, one thread
    (a module that needs another kind defines its own)."""
    from modelswarm.weights.experts import load_bank
    from modelswarm.objectives import make_utility, utility_config
    from modelswarm.cluster.worker import Evaluator

    bank = load_bank(str(world["experts"]))
    cfg = utility_config(kind="multiple_choice", data=str(world["val"]))
    val = make_utility(cfg).load(world["val"])
    return Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": val}, num_threads=1)


@pytest.fixture(scope="session")
def ray_session():
    from modelswarm.cluster.pool import init_ray
    import ray

    init_ray(None, workers=2, num_cpus=1)
    yield ray
    ray.shutdown()


def write_config(path: Path, world: dict, runs_dir: Path, **over) -> Path:
    """A tiny swarm config; keyword arguments override top-level sections (dicts merge)."""
    import yaml

    cfg = {
        "name": "t",
        "runs_dir": str(runs_dir),
        "base_model": str(world["base"]),
        "experts": str(world["experts"]),
        "seed": 0,
        "utility": {"kind": "multiple_choice", "data": str(world["val"]), "test_data": str(world["test"]),
                    "batch_sequences": 32, "head_rows": 32},
        "swarm": {"size": 6, "max_iterations": 6, "patience": 4, "restart_patience": 3},
        "workers": {"count": 2, "num_cpus": 1},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    path.write_text(yaml.safe_dump(cfg))
    return path


def utility_of(kind: str, **keys):
    """A utility of `kind` from the keys a YAML `utility:` section would hold (common and kind-specific)."""
    from modelswarm.objectives import make_utility, utility_config

    return make_utility(utility_config({"kind": kind, **keys}))


@pytest.fixture(scope="module")
def setup(world):
    """(bank, Evaluator) on the tiny world, one thread: a worker without Ray."""
    from modelswarm.weights.experts import load_bank
    from modelswarm.objectives import utility_config
    from modelswarm.cluster.worker import Evaluator

    bank = load_bank(str(world["experts"]))
    cfg = utility_config(kind="multiple_choice", data=str(world["val"]))
    ev = Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": []}, num_threads=1)
    return bank, ev
