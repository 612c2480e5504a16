"""The evaluations of a run: scores by candidate, from the journal's cache or computed on the
Ray pool (started on first need) and journaled before they are used."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Optional, Protocol, Sequence

from ..weights.candidates import as_candidates
from ..cluster.dispatch import run_jobs
from ..cluster.jobs import Failure, Job
from .packing import packed_result
from ..cluster.pool import EvaluatorPool, init_ray
from .state import Evaluation, RunDir


def start_pool(prep: Any, address: Optional[str] = None,
               notify: Optional[Callable[[str], None]] = None) -> EvaluatorPool:
    """The Ray actor pool for a prepared run (prepare.Prepared: its workers section, bank, data
    and module paths); notify(text) hears of lost nodes and a shrinking pool."""
    w = prep.config.workers
    init_ray(address, w.count, w.num_cpus)
    actor_kwargs = dict(
        base_model=prep.config.base_model, layout=prep.bank.layout, matrix=prep.bank.matrix,
        utility=prep.config.utility, splits=prep.splits, device=w.device, dtype=w.dtype,
        sys_paths=prep.sys_paths,
    )
    return EvaluatorPool(actor_kwargs, workers=w.count, num_cpus=w.num_cpus, num_gpus=w.num_gpus,
                         eval_timeout_s=w.eval_timeout_s, max_retries=w.max_retries, notify=notify)


class Watcher(Protocol):
    """Whoever watches the evaluations (the live table): told, never asked."""

    def message(self, text: str) -> None: ...

    def evaluation(self, particle: int, ev: Evaluation) -> None: ...


class _Silent:
    def message(self, text: str) -> None:
        pass

    def evaluation(self, particle: int, ev: Evaluation) -> None:
        pass


class Evaluations:
    """Scores by candidate key: the journal, replayed on resume, doubles as the cache."""

    def __init__(self, run_dir: RunDir, pool_factory: Callable[[], EvaluatorPool],
                 watcher: Optional[Watcher] = None, secondary: bool = False):
        """secondary: the search reads Score.secondary (utility.tie_break), so a cached
        validation score without one (journaled under tie_break off) is scored again."""
        self.run_dir = run_dir
        self.secondary = secondary
        self._pool_factory = pool_factory
        self._pool: Optional[EvaluatorPool] = None
        self.watcher: Watcher = watcher or _Silent()
        self.cache: dict[str, Evaluation] = {}
        for ev in run_dir.read_journal():
            if not ev.failed:  # a failure is retried, never replayed
                self.cache[self._key(ev.split, ev.hash)] = ev
        self.replayed = len(self.cache)
        self.computed = 0
        self.hits = 0

    @staticmethod
    def _key(split: str, h: str) -> str:
        return f"{split}:{h}"

    @property
    def pool(self) -> EvaluatorPool:
        if self._pool is None:
            self.watcher.message("starting workers (loading base model and expert bank)")
            self._pool = self._pool_factory()
            self.watcher.message("searching")
        return self._pool

    def score(self, candidates: Any, split: str = "val", iteration: Optional[int] = None,
              bounds: Optional[Sequence[float]] = None,
              particles: Optional[Sequence[int]] = None) -> list[Evaluation]:
        """Evaluations of each candidate (cached, or computed on the pool and journaled).

        candidates: candidates.Candidate, or coefficient rows as a matrix.
        iteration: the search iteration they belong to (None: outside the search).
        bounds: per candidate, the score it must beat to matter (its personal best); with
        utility.early_exit on, scoring may stop below it. particles: the particle index of
        each, for the journal and the live table (default: the index in candidates)."""
        cands = as_candidates(candidates)
        particles = list(range(len(cands))) if particles is None else [int(i) for i in particles]
        out: list[Optional[Evaluation]] = [None] * len(cands)
        todo: dict[str, list[int]] = {}
        for i, cand in enumerate(cands):
            h = cand.key()
            ev = self.cache.get(self._key(split, h))
            need = bounds[i] if bounds is not None else None
            if ev is not None and ev.bound is not None and (need is None or need < ev.bound):
                ev = None  # an upper bound does not settle a lower bar: score it again
            elif ev is not None and self.secondary and split == "val" and ev.secondary is None and ev.bound is None:
                ev = None  # journaled without the tie-break score the search now reads
            if ev is not None:
                out[i] = ev
                self.hits += 1
            else:
                todo.setdefault(h, []).append(i)
        if todo:
            def bound_of(idx: list[int]) -> Optional[float]:
                if bounds is None or not all(math.isfinite(bounds[i]) for i in idx):
                    return None
                return float(min(bounds[i] for i in idx))

            jobs = [Job(key=h, candidate=cands[idx[0]], split=split, bound=bound_of(idx)) for h, idx in todo.items()]

            def done(job: Job, result, actor) -> None:
                ev = self._record(job, result, iteration=iteration, particle=particles[todo[job.key][0]])
                for i in todo[job.key]:
                    out[i] = ev
                    self.watcher.evaluation(particles[i], ev)

            run_jobs(self.pool, jobs, done)
        return out  # type: ignore[return-value]

    def _record(self, job: Job, result, iteration: Optional[int], particle: int) -> Evaluation:
        """A finished job as an Evaluation: journaled (durable before it is used), then cached
        unless it failed."""
        head = dict(iteration=iteration, particle=particle, hash=job.key, candidate=job.candidate, split=job.split)
        if isinstance(result, Failure):
            ev = Evaluation(**head, result=None, error=f"{result.reason} (after {result.attempts} attempts)")
        else:
            ev = Evaluation(**head, result=replace(packed_result(result), seconds=round(result.seconds, 4)),
                            bound=job.bound if result.early_exit else None)
        self.run_dir.append(ev)
        if not ev.failed:
            self.cache[self._key(job.split, job.key)] = ev
        self.computed += 1
        return ev

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
