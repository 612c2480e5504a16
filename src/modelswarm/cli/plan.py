"""`modelswarm plan CONFIG`: what a run will cost, before it runs.

Reads the config, the experts' and base model's safetensors headers (no weights), counts
the examples, then times a warm-up (the model as a worker holds it, on validation examples
taken evenly across the file, with a worker's threads) to estimate the time per evaluation
and per iteration.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..report.baselines import reference_points
from ..config import Config
from ..weights.experts import BankLayout, base_shapes, check_against_base, read_layout
from ..search.start import swarm_size
from ..objectives import make_utility

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# the warm-up sample doubles while one timed pass takes less than this
WARMUP_BUDGET_S = 2.0


@dataclass(frozen=True)
class Plan:
    experts: int
    kind: str
    particles: int
    bank_params: int
    bank_mb: float
    base_params: int
    base_mb: float
    worker_mb: float
    side_models: dict  # name -> MB: models a worker holds besides the particle (reward model, judge)
    val_examples: int
    test_examples: int
    evals_per_iteration: int
    max_evaluations: int
    warmup_examples: int  # the size of the sample the time per evaluation comes from
    dtype: str  # what the workers will use (workers.dtype, `auto` resolved)
    bf16: str  # whether the device runs bfloat16 natively, and what says so
    seconds_per_eval: Optional[float]
    evals_per_minute: Optional[float]  # all workers together
    other_dtype: Optional[dict]  # {"dtype", "seconds_per_eval"}: the other of float32/bfloat16, timed too
    seconds_per_iteration: Optional[float]
    max_seconds: Optional[float]


def make_plan(config: Config, warmup_examples: int = 8) -> Plan:
    from ..engine.models import native_bf16, pick_device, resolve_dtype  # torch, only once a plan is asked for

    layout, _, _ = read_layout(config.experts)
    check_against_base(layout, config.base_model)
    shapes = base_shapes(Path(config.base_model))
    base_params = sum(math.prod(s) for s in shapes.values())
    utility = make_utility(config.utility)
    utility.check()
    val = utility.load_split("val")
    test = utility.load_split("test") or []
    side = utility.side_models()
    n = len(layout.names)
    size = swarm_size(n, config.swarm)
    bank_mb = layout.n_params * n * 4 / 2**20
    device = pick_device(config.workers.device)
    dtype = resolve_dtype(config.workers.dtype, device)
    native, why = native_bf16(device)
    base_mb = base_params * BYTES[dtype] / 2**20
    # a worker holds the base, the bank (shared pages), and one composed copy of the expert tensors
    worker_mb = base_mb + bank_mb + layout.n_params * 4 / 2**20 + sum(side.values())
    n_baselines = len(reference_points(layout))
    # on test at the end: the global best, the baselines, every personal best and starting particle
    n_test = (1 + n_baselines + 2 * size) if test else 0
    max_evals = size * (config.swarm.max_iterations + 1) + 2 + n_test
    per_eval = per_iter = total = per_minute = other = None
    if warmup_examples:
        k = warmup_examples
        per_example, warmup_examples = _warmup(config, layout, utility, val, k, dtype)
        per_eval = per_example * len(val)
        per_minute = 60.0 * config.workers.count / per_eval
        if native and dtype in ("float32", "bfloat16"):  # the choice only pays where bf16 is native
            alt = "float32" if dtype == "bfloat16" else "bfloat16"
            other = {"dtype": alt, "seconds_per_eval": _warmup(config, layout, utility, val, k, alt)[0] * len(val)}
        waves = math.ceil(size / config.workers.count)
        per_iter = per_eval * waves
        test_s = per_eval * len(test) / max(len(val), 1) * math.ceil(n_test / config.workers.count)
        total = per_iter * (config.swarm.max_iterations + 1) + test_s
    return Plan(experts=n, kind=layout.kind, particles=size, bank_params=layout.n_params, bank_mb=round(bank_mb, 2),
                base_params=base_params, base_mb=round(base_mb, 1), worker_mb=round(worker_mb, 1), side_models=side,
                val_examples=len(val), test_examples=len(test), evals_per_iteration=size, max_evaluations=max_evals,
                warmup_examples=warmup_examples, dtype=dtype, bf16=("native: " if native else "not native: ") + why,
                seconds_per_eval=per_eval, evals_per_minute=per_minute, other_dtype=other,
                seconds_per_iteration=per_iter, max_seconds=total)


def _warmup(config: Config, layout: BankLayout, utility, val: list, k: int, dtype: str) -> tuple[float, int]:
    """(seconds per example, examples timed). Examples are taken evenly across the file, so
    every task is in the sample; the sample doubles while a timed pass takes less than
    WARMUP_BUDGET_S, because shared prompt prefixes and continuous batching make a large
    sample cheaper per example than a small one (8 demo examples overestimate by about 2x)."""
    import torch

    from ..engine.models import DTYPES, load_model, load_tokenizer, pick_device

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter, as in a worker
    torch.set_num_threads(max(1, int(config.workers.num_cpus)))
    model = load_model(config.base_model, layout, pick_device(config.workers.device), DTYPES[dtype])
    tok = load_tokenizer(config.base_model)
    n = min(k, len(val))
    engine = utility.engine(model, tok)  # as a worker's: side models load once, untimed
    utility.score_with(engine, _spread(val, n))  # the first pass allocates
    while True:
        start = time.perf_counter()
        utility.score_with(engine, _spread(val, n))
        seconds = time.perf_counter() - start
        if seconds >= WARMUP_BUDGET_S or n == len(val):
            return seconds / n, n
        n = min(2 * n, len(val))


def _spread(items: list, n: int) -> list:
    """n of the items, evenly spaced from the first."""
    return [items[i * len(items) // n] for i in range(n)]


def plan_command(config_path: Path, warmup: int, log: Callable[[str], None]) -> Plan:
    """`modelswarm plan`: the plan, said in a few lines."""
    from ..config import load_config

    cfg = load_config(config_path)
    p = make_plan(cfg, warmup)
    fmt_s = lambda s: "?" if s is None else (f"{s:.1f}s" if s < 120 else f"{s / 60:.1f} min")  # noqa: E731
    log(
        f"experts: {p.experts} ({p.kind}), particles: {p.particles}\n"
        f"expert bank: {p.bank_params:,} parameters per expert, {p.bank_mb} MB in all (shared by a node's workers)\n"
        f"base model: {p.base_params:,} parameters, {p.base_mb} MB as {p.dtype}"
        f"{' (auto)' if cfg.workers.dtype == 'auto' else ''}; bfloat16 {p.bf16}\n"
        + "".join(f"{name}: {mb} MB in each worker, next to the particle model\n" for name, mb in p.side_models.items())
        + f"per worker: about {p.worker_mb} MB plus the Python/torch runtime, x {cfg.workers.count} workers\n"
        f"validation: {p.val_examples} examples, test: {p.test_examples}\n"
        f"evaluations: {p.evals_per_iteration} per iteration, at most {p.max_evaluations} in all\n"
        f"time (from a {p.warmup_examples}-example warm-up): {fmt_s(p.seconds_per_eval)} per evaluation"
        + (f" ({p.evals_per_minute:.0f} per minute with {cfg.workers.count} workers)" if p.evals_per_minute else "")
        + (f"; as {p.other_dtype['dtype']}: {fmt_s(p.other_dtype['seconds_per_eval'])} per evaluation"
           if p.other_dtype else "")
        + f"\n  {fmt_s(p.seconds_per_iteration)} per iteration, at most {fmt_s(p.max_seconds)} "
        f"for {cfg.swarm.max_iterations} iterations (sooner if patience stops it)")
    return p
