"""The evaluator: base model + expert bank loaded once, particles composed in place.

`Evaluator` is a plain class (used directly by `modelswarm eval`, baselines and tests);
`EvaluatorActor` is the same class as a Ray actor. One evaluation = write sum_j c_j E_j
into the model's parameters, run the utility, return the score. An evaluation may instead
carry a delta-space merge (delta.MergeSpec as a dict: `modelswarm compare`'s task
arithmetic, TIES, DARE-TIES), written in place by a DeltaComposer made on first use.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .compose import Composer
from .errors import UserError, error_line
from .experts import BankLayout
from .models import DTYPES, load_model, load_tokenizer, pick_device, resolve_dtype
from .utilities import UtilityConfig, make_utility

# after an evaluation this long, hand its freed heap back (fragments would otherwise pile up
# in RSS); after a short one the page faults that follow would cost more than they save
TRIM_AFTER_S = 0.5


@dataclass(frozen=True)
class EvalResult:
    score: float
    per_example: Optional[list[float]]
    seconds: float
    worker: str
    early_exit: bool = False
    answers: Optional[list[Any]] = None
    parts: Optional[dict[str, float]] = None  # multitask: each part's score
    counts: Optional[dict[str, int]] = None  # llm_judge: unparsable ratings


class Evaluator:
    def __init__(
        self,
        base_model: str,
        layout: BankLayout,
        matrix: np.ndarray,
        utility: UtilityConfig,
        splits: dict[str, list[dict[str, Any]]],
        device: str = "auto",
        dtype: str = "float32",
        num_threads: Optional[int] = None,
        sys_paths: Sequence[str] = (),
    ):
        warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
        for p in sys_paths:  # for python utilities defined next to the config
            if p not in sys.path:
                sys.path.insert(0, p)
        if num_threads:
            torch.set_num_threads(max(1, int(num_threads)))
        torch.manual_seed(0)
        import peft  # noqa: F401  the runtime (libraries) is in the baseline, the model is not
        import transformers  # noqa: F401

        self._baseline_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.device = pick_device(device)
        self.tokenizer = load_tokenizer(base_model)
        self.model = load_model(base_model, layout, self.device, DTYPES[resolve_dtype(dtype, self.device)])
        self.composer = Composer(self.model, layout, matrix)
        self._base_model, self._layout = base_model, layout
        self._delta = None  # the DeltaComposer, made on the first merge
        self.utility = make_utility(utility)
        self.engine = self.utility.engine(self.model, self.tokenizer)  # one per worker: side models load once
        self.splits = splits  # "val" (what the search optimises), "test" (held out), ...
        self.name = worker_name()
        release_free_heap()

    def evaluate(self, coeffs: Sequence[float], split: str = "val", bound: Optional[float] = None,
                 merge: Optional[dict] = None) -> EvalResult:
        """Score coefficients (the swarm's composition), or with `merge` a delta-space merge."""
        start = time.perf_counter()
        if merge is not None:
            from .delta import DeltaComposer, MergeSpec

            if self._delta is None:
                self._delta = DeltaComposer(self.model, self._layout, self.composer.bank, self.composer,
                                            self._base_model)
            self._delta.apply(MergeSpec.from_dict(merge))
        else:
            if self._delta is not None:
                self._delta.restore()
            self.composer.apply(coeffs)
        result = self.utility.evaluate_with(self.engine, self.splits[split], bound)
        seconds = time.perf_counter() - start
        if seconds > TRIM_AFTER_S:
            release_free_heap()
        return EvalResult(score=result.value, per_example=result.per_example, seconds=seconds, worker=self.name,
                          early_exit=result.early_exit, answers=result.answers, parts=result.parts,
                          counts=result.counts)

    def evaluate_many(self, jobs: Sequence[tuple]) -> list[EvalResult | str]:
        """Several evaluations in one call (the pool batches short ones); an evaluation that
        raises becomes its error line, so it does not take its neighbours down with it.
        A job is (coeffs, split, bound) or (coeffs, split, bound, merge)."""
        out: list[EvalResult | str] = []
        for job in jobs:
            try:
                out.append(self.evaluate(*job))
            except UserError:
                raise
            except Exception as exc:
                out.append(error_line(exc))
        return out

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def memory(self) -> dict[str, float]:
        """Peak and current RSS of this worker, and what the interpreter and libraries held
        before the model and bank were loaded (MB)."""
        current = 0.0
        try:
            with open("/proc/self/status") as f:
                current = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            pass
        return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "current_rss_mb": current, "baseline_rss_mb": self._baseline_rss_mb}


def release_free_heap() -> None:
    """Hand freed heap back to the OS: glibc keeps it otherwise, and it would count in the
    worker's RSS for the whole run (loading alone leaves ~30 MB, from parsing the tokenizer)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def worker_name() -> str:
    """host:pid, prefixed with the Ray node id inside a Ray worker (nodes can share a host)."""
    name = f"{os.uname().nodename}:{os.getpid()}"
    try:
        import ray

        if ray.is_initialized():
            name = f"{ray.get_runtime_context().get_node_id()[:8]}/{name}"
    except Exception:  # not in Ray, or an older Ray without the runtime context
        pass
    return name


def actor_class():
    import ray

    return ray.remote(Evaluator)
