"""The search loop: PSO on coefficients, evaluations on the Ray pool, journal and snapshots.

    prepare (validate everything, write nothing) -> run directory -> Ray pool
    -> score the initial swarm -> [propose -> evaluate -> record -> snapshot] until done
    -> export best/ -> summary.json

Every finished evaluation is appended to evaluations.jsonl before it is used, and the
swarm is snapshotted after every iteration, so a killed run resumes where it stopped and
replays (never recomputes) what had finished.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from .baselines import zero_is_base
from .candidates import as_candidates
from .config import Config
from .context import check_prompts_fit
from .dispatch import run_jobs
from .errors import UserError
from .experts import ExpertBank, check_against_base, load_bank
from .jobs import Failure, Job
from .lock import RunLock
from .pool import ClusterLost, EvaluatorPool, init_ray
from .progress import Progress
from .report import finish
from .packing import packed_result
from .state import Evaluation, RunDir
from .layer_groups import n_layers
from .swarm import Swarm, coefficient_groups, off_the_simplex
from .utilities import make_utility
from .utilities.python_fn import sys_paths_for


@dataclass
class Prepared:
    """Everything a run needs, validated; nothing has been written yet."""

    config: Config
    bank: ExpertBank
    splits: dict[str, list[dict[str, Any]]]
    config_path: Optional[Path] = None


def prepare(config: Config, config_path: Optional[Path] = None) -> Prepared:
    for p in sys_paths_for(config_path):  # python utilities may live next to the config
        if p not in sys.path:
            sys.path.insert(0, p)
    utility = make_utility(config.utility)
    try:  # side models (reward model, judge), templates: before any worker starts
        utility.check()
    except UserError as exc:  # name the config file too, as the config's own errors do
        if config_path is None or not exc.where.startswith("utility."):
            raise
        raise UserError(config_path, f"key '{exc.where}': {exc.problem}") from None
    splits = {s: ex for s in ("val", "test") if (ex := utility.load_split(s)) is not None}
    bank = load_bank(config.experts)
    check_against_base(bank.layout, config.base_model)
    check_prompts_fit(config.base_model, config.utility, splits)
    groups, layers = coefficient_groups(config.swarm), n_layers(bank.layout.keys)
    if groups > max(layers, 1):
        raise UserError(config_path or "<config>", f"key 'swarm.layer_groups' is {groups}, more than the {layers} "
                                                   "decoder layers the experts' tensors cover")
    size = config.swarm.size
    if size is not None and size < len(bank.names):
        raise UserError(config_path or "<config>", f"key 'swarm.size' is {size}, fewer than the "
                                                   f"{len(bank.names)} experts: every expert starts as a particle")
    return Prepared(config, bank, splits, config_path)


def start_pool(prep: Prepared, address: Optional[str] = None,
               notify: Optional[Callable[[str], None]] = None) -> EvaluatorPool:
    """The Ray actor pool; notify(text) hears of lost nodes and a shrinking pool."""
    w = prep.config.workers
    init_ray(address, w.count, w.num_cpus)
    actor_kwargs = dict(
        base_model=prep.config.base_model, layout=prep.bank.layout, matrix=prep.bank.matrix,
        utility=prep.config.utility, splits=prep.splits, device=w.device, dtype=w.dtype,
        sys_paths=sys_paths_for(prep.config_path),
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
                 watcher: Optional[Watcher] = None):
        self.run_dir = run_dir
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


def utilities_of(results: Sequence[Evaluation]) -> np.ndarray:
    """Scores for the swarm: nan marks a failed evaluation, which the swarm treats as not evaluated."""
    return np.array([math.nan if e.failed else e.score for e in results], dtype=np.float64)


def run_swarm(
    prep: Prepared,
    address: Optional[str] = None,
    resume: bool = False,
    live: Optional[bool] = None,
    stop_after: Optional[int] = None,
    pool: Optional[EvaluatorPool] = None,
) -> dict[str, Any]:
    """Run (or resume) a search to the end; returns the summary. stop_after: iterations, for tests.
    pool: an already started pool to evaluate on (modelswarm compare); it is left running."""
    config = prep.config
    rd = RunDir(config.run_dir)
    if resume and not rd.exists():
        raise UserError(rd.path, "nothing to resume: not a run directory")
    if not resume:
        check_new(rd)
    rd.path.mkdir(parents=True, exist_ok=True)
    with RunLock(rd.path) as lock:  # one process at a time on a run directory
        try:
            return _run_locked(prep, rd, address, resume, live, stop_after, pool)
        except UserError:
            if not resume and rd.holds_nothing():  # bad input that only the first evaluations showed
                rd.discard()  # under the lock; the folder goes after it, if nobody else has begun there
                lock.release()
                rd.remove_if_empty()
            raise


def check_new(rd: RunDir) -> None:
    if rd.exists():
        raise UserError(rd.path, "run directory already exists: resume it (modelswarm resume) or change 'name'")


def _run_locked(prep: Prepared, rd: RunDir, address: Optional[str], resume: bool, live: Optional[bool],
                stop_after: Optional[int], pool: Optional[EvaluatorPool] = None) -> dict[str, Any]:
    config, bank = prep.config, prep.bank
    if resume:
        rd.check_experts(bank.names)
    else:
        check_new(rd)  # again, under the lock: another process may have created it meanwhile
        rd.create(config, bank.names, bank.sources, prep.config_path)

    swarm, state = rd.load_state(config) if resume else (None, {})
    if swarm is None:
        swarm = Swarm.create(len(bank.names), config.swarm, config.seed, base_point=zero_is_base(bank.layout))
        if scaled := off_the_simplex(swarm.x, len(bank.names)):
            print(f"starting swarm: {scaled} of {swarm.size} particles do not sum to 1 (the base anchor and the crossover "
                  "children descended from it; swarm.anchors: [] is the official start)", flush=True)
    elapsed_before = float(state.get("elapsed_s", 0.0))
    t0 = time.monotonic()

    def snapshot(status: str) -> None:
        rd.save_state(swarm, {"status": status, "elapsed_s": elapsed_before + time.monotonic() - t0,
                              "experts": list(bank.names)})

    progress = Progress(bank.names, config.swarm.max_iterations, live=live)
    evals = Evaluations(rd, (lambda: pool) if pool is not None else lambda: start_pool(prep, address, progress.message),
                        progress)
    try:
        with progress:
            if not swarm.started:
                results = evals.score(swarm.x, iteration=0)
                scores = utilities_of(results)
                if np.isnan(scores).all():
                    raise UserError(config.utility.data, f"every initial expert failed to evaluate: {results[0].error}")
                swarm.start(scores)
                snapshot("running")
                progress.iteration(swarm)
            while not swarm.done and (stop_after is None or swarm.iteration < stop_after):
                x = swarm.propose()
                chosen = np.flatnonzero(swarm.evaluate)  # all but the dropped (drop_iteration/particle)
                scores = np.full(swarm.size, np.nan)
                if len(chosen):
                    results = evals.score(x[chosen], iteration=swarm.iteration + 1, bounds=swarm.p_scores[chosen],
                                          particles=chosen)
                    scores[chosen] = utilities_of(results)
                swarm.record(scores)
                snapshot("running")
                progress.iteration(swarm)
            if not swarm.done:
                return {"status": "stopped", "iteration": swarm.iteration}
            progress.message("exporting best/")
            summary = finish(prep, rd, swarm, evals, elapsed_before + time.monotonic() - t0)
            snapshot("finished")
            return summary
    except ClusterLost as exc:
        raise UserError(rd.path, f"{exc.problem}: the run is saved up to its last complete iteration; once the "
                                 f"cluster has room again, resume with `modelswarm resume {rd.path}`") from None
    finally:
        if pool is None:
            evals.shutdown()
