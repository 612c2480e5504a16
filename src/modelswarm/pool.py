"""A pool of Ray evaluator actors with timeouts, re-dispatch and bounded retries.

Jobs are coefficient rows. Each actor holds the base model and the expert bank (shared via
the object store) and evaluates the rows of one call at a time (one row, or a few short
ones), with at most one more call queued on it. A job whose actor dies or overruns its
timeout goes back to the queue and the actor is replaced; after `max_retries` failed
attempts the job is reported as failed (the swarm treats it as not evaluated). A UserError raised
inside a worker (bad utility function, bad data) aborts the whole run instead.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import OFFLINE_ENV
from .errors import UserError, error_line
from .worker import EvalResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    key: Any
    coeffs: tuple[float, ...]
    split: str = "val"
    bound: Optional[float] = None  # early exit below this score (None: score fully)


@dataclass(frozen=True)
class Failure:
    reason: str
    attempts: int


def init_ray(address: Optional[str], workers: int, num_cpus: float) -> None:
    """Join a cluster (`address`) or start a private local Ray sized for the pool."""
    import ray

    if ray.is_initialized():
        return
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING,
                                  runtime_env={"env_vars": OFFLINE_ENV}, log_to_driver=True)
    if address:
        ray.init(address=address, **kwargs)
    else:
        # oversubscribe a small machine rather than leave actors pending forever
        cpus = max(os.cpu_count() or 1, int(workers * num_cpus + 0.999))
        ray.init(num_cpus=cpus, **kwargs)


class EvaluatorPool:
    def __init__(
        self,
        actor_kwargs: dict[str, Any],
        workers: int,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        eval_timeout_s: float = 1800.0,
        max_retries: int = 2,
        start_timeout_s: float = 900.0,
        prefetch_below_s: float = 1.0,
        chunk_target_s: float = 0.05,
    ):
        import ray

        from .worker import actor_class

        self._ray = ray
        # the bank goes into the object store once; every actor maps the same memory
        kwargs = dict(actor_kwargs)
        kwargs["matrix"] = ray.put(kwargs["matrix"])
        kwargs.setdefault("num_threads", max(1, int(num_cpus)))
        self._kwargs = kwargs
        self._options = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)
        self._cls = actor_class()
        self.eval_timeout_s = eval_timeout_s
        self.max_retries = max_retries
        self.start_timeout_s = start_timeout_s
        self.prefetch_below_s = prefetch_below_s  # evaluations shorter than this are chunked and queued ahead
        self.chunk_target_s = chunk_target_s
        self._recent: collections.deque = collections.deque(maxlen=8)  # seconds of the latest evaluations
        self.actors = [self._spawn() for _ in range(workers)]
        self.restarted = 0
        self._wait_ready(self.actors)

    def _spawn(self):
        return self._cls.options(**self._options).remote(**self._kwargs)

    def _wait_ready(self, actors: Sequence[Any]) -> None:
        """Block until the actors have loaded their models; surface a load error clearly."""
        ray = self._ray
        refs = [a.pid.remote() for a in actors]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout_s)
        if pending:
            raise UserError("workers", f"{len(pending)} of {len(refs)} workers did not start within "
                                       f"{self.start_timeout_s:.0f}s (not enough CPUs/GPUs in the cluster?)")
        for ref in ready:
            try:
                ray.get(ref, timeout=60)
            except UserError:
                raise
            except Exception as exc:  # the constructor failed: model load, bad bank, ...
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, UserError):
                    raise cause from None
                raise RuntimeError(f"a worker failed to start: {cause}") from None

    def _replace(self, slot: int) -> None:
        try:
            self._ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        self.actors[slot] = self._spawn()
        self.restarted += 1

    def _typical_s(self) -> float:
        """Mean duration of the latest evaluations (infinite before the first)."""
        return sum(self._recent) / len(self._recent) if self._recent else math.inf

    def _chunk(self, queue: collections.deque, solo: set, waiting_here: int, waiting_all: int) -> list[Job]:
        """The next jobs for one actor call. Short evaluations travel several to a call (the
        round trip costs about a millisecond, a tiny-model evaluation about ten), up to the
        actor's fair share of the jobs not yet done, less those already waiting on it (so the
        first actor served does not take more than the others); long ones, and jobs that
        failed before, go alone."""
        mean = self._typical_s()
        size = 1
        if mean < self.prefetch_below_s:
            share = (len(queue) + waiting_all) // len(self.actors) - waiting_here
            size = max(1, min(int(self.chunk_target_s / max(mean, 1e-6)), share))
        chunk = [queue.popleft()]
        while len(chunk) < size and queue and chunk[0].key not in solo and queue[0].key not in solo:
            chunk.append(queue.popleft())
        return chunk

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[Job, EvalResult | Failure, Any], None],
        poll_s: float = 0.5,
    ) -> None:
        """Evaluate all jobs; on_result(job, result_or_failure, actor) as each one finishes.

        Each actor has a line of at most two calls: while evaluations are short, a second
        call waits on the actor so it never idles through the round trip to this driver (and
        its journal fsync). Near the end of the queue, and for long evaluations, jobs are
        handed out only as actors free up, which balances the load better. A call that fails
        as a whole (its actor died or overran) sends its jobs back one by one, so only a
        job's own failures count against its retries."""
        ray = self._ray
        queue = collections.deque(jobs)
        attempts: dict[Any, int] = collections.defaultdict(int)
        solo: set = set()  # keys of jobs that were in a failed call: they go alone from now on
        slots = range(len(self.actors))
        lines: list[collections.deque] = [collections.deque() for _ in slots]  # [ref, jobs, head since]

        def submit(slot: int) -> None:
            waiting = [sum(len(entry[1]) for entry in line) for line in lines]
            chunk = self._chunk(queue, solo, waiting[slot], sum(waiting))
            ref = self.actors[slot].evaluate_many.remote([(list(j.coeffs), j.split, j.bound) for j in chunk])
            lines[slot].append([ref, chunk, time.monotonic() if not lines[slot] else None])

        def fail(slot: int, job: Job, reason: str) -> None:
            attempts[job.key] += 1
            log.warning("evaluation %s failed (attempt %d): %s", job.key, attempts[job.key], reason)
            if attempts[job.key] > self.max_retries:
                on_result(job, Failure(reason, attempts[job.key]), self.actors[slot])
            else:
                solo.add(job.key)
                queue.appendleft(job)

        def lose_actor(slot: int, chunk: list[Job], reason: str) -> None:
            self._replace(slot)
            waiting = [job for entry in lines[slot] for job in entry[1]]
            lines[slot].clear()
            queue.extendleft(reversed(waiting))  # not attempted: back in front, uncounted
            if len(chunk) == 1:
                fail(slot, chunk[0], reason)
            else:  # whose fault is unknown: retry each alone, uncounted
                solo.update(job.key for job in chunk)
                queue.extendleft(reversed(chunk))

        while queue or any(lines):
            for slot in slots:
                if queue and not lines[slot]:
                    submit(slot)
            if self._typical_s() < self.prefetch_below_s:
                for slot in slots:
                    if len(queue) > len(slots) and len(lines[slot]) == 1:
                        submit(slot)
            heads = {lines[slot][0][0]: slot for slot in slots if lines[slot]}
            ready, _ = ray.wait(list(heads), num_returns=1, timeout=poll_s)
            for ref in ready:
                slot = heads[ref]
                _, chunk, _ = lines[slot].popleft()
                if lines[slot]:
                    lines[slot][0][2] = time.monotonic()
                try:
                    results = ray.get(ref, timeout=60)
                except UserError:
                    raise
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                    lose_actor(slot, chunk, f"worker lost ({type(exc).__name__})")
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, UserError):
                        raise cause from None
                    results = [error_line(cause or exc)] * len(chunk)
                for job, result in zip(chunk, results):
                    if isinstance(result, str):  # the evaluation raised in the worker
                        fail(slot, job, result)
                        continue
                    self._recent.append(result.seconds)
                    on_result(job, result, self.actors[slot])
            now = time.monotonic()
            for slot in slots:
                if lines[slot] and now - lines[slot][0][2] > self.eval_timeout_s * len(lines[slot][0][1]):
                    chunk = lines[slot].popleft()[1]
                    lose_actor(slot, chunk, f"timed out after {self.eval_timeout_s:.0f}s")

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self.actors = []
