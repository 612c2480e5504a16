"""One `EvaluatorPool.run`: hand jobs to the actors, collect results, retry failures.

Each actor has a line of at most two calls: while evaluations are short, a second call
waits on the actor so it never idles through the round trip to the driver (and its
journal fsync). Near the end of the queue, and for long evaluations, jobs are handed out
only as actors free up, which balances the load better. A call that fails as a whole (its
actor died or overran) sends its jobs back one by one, so only a job's own failures count
against its retries, and a lost node's not at all.

The loop is four named steps (`fill`, `wait`, `collect`, `expire`) over one record type,
`Call`; the pool (pool.py) owns the actors and their replacement.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .errors import UserError, error_line
from .pool import Failure, job_arguments
from .worker import EvalResult

if TYPE_CHECKING:
    from .pool import EvaluatorPool, Job

log = logging.getLogger(__name__)

OnResult = Callable[["Job", "EvalResult | Failure", Any], None]


@dataclass
class Call:
    """One `evaluate_many` call waiting on an actor."""

    ref: Any  # the Ray object reference of its result
    jobs: list["Job"]
    head_since: Optional[float]  # when it reached the front of its actor's line (its timeout runs from there)


class Dispatch:
    def __init__(self, pool: "EvaluatorPool", jobs: Sequence["Job"], on_result: OnResult):
        self.pool = pool
        self.on_result = on_result
        self.queue: collections.deque = collections.deque(jobs)
        self.attempts: dict[Any, int] = collections.defaultdict(int)
        self.solo: set = set()  # keys of jobs that were in a failed call: they go alone from now on
        self.lines: list[collections.deque[Call]] = [collections.deque() for _ in pool.actors]
        pool._lines = self.lines  # the pool drops an actor's (empty) line with the actor

    def busy(self) -> bool:
        return bool(self.queue) or any(self.lines)

    # --- the four steps -------------------------------------------------------------------

    def fill(self) -> None:
        """Give every idle ready actor a call; while evaluations are short, queue a second."""
        ready = self.pool._ready_slots()
        for slot in ready:
            if self.queue and not self.lines[slot]:
                self.submit(slot)
        if self.pool._typical_s() < self.pool.prefetch_below_s:
            for slot in ready:
                if len(self.queue) > len(ready) and len(self.lines[slot]) == 1:
                    self.submit(slot)

    def wait(self, poll_s: float) -> None:
        """Block until one head call or one starting actor answers (or poll_s), and handle it."""
        pool = self.pool
        heads = {self.lines[slot][0].ref: slot for slot in pool._ready_slots() if self.lines[slot]}
        probes = {pool._probes[slot]: slot for slot in pool._starting()}
        if not heads and not probes:
            time.sleep(poll_s)
            return
        ready, _ = pool._ray.wait(list(heads) + list(probes), num_returns=1, timeout=poll_s)
        for ref in ready:
            if ref in probes:
                pool._settle(probes[ref])
            else:
                self.collect(heads[ref])

    def collect(self, slot: int) -> None:
        """The head call of an actor came back: deliver its results, or handle its failure."""
        ray = self.pool._ray
        call = self.lines[slot].popleft()
        if self.lines[slot]:
            self.lines[slot][0].head_since = time.monotonic()
        try:
            results = ray.get(call.ref, timeout=60)
        except UserError:
            raise
        except ray.exceptions.RayActorError as exc:
            self.lose_actor(slot, call.jobs, f"worker lost ({type(exc).__name__})", node_check=True)
            return
        except ray.exceptions.GetTimeoutError as exc:
            self.lose_actor(slot, call.jobs, f"worker lost ({type(exc).__name__})")
            return
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UserError):
                raise cause from None
            results = [error_line(cause or exc)] * len(call.jobs)
        for job, result in zip(call.jobs, results):
            if isinstance(result, str):  # the evaluation raised in the worker
                self.fail(slot, job, result)
                continue
            self.pool._recent.append(result.seconds)
            self.on_result(job, result, self.pool.actors[slot])

    def expire(self) -> None:
        """Replace actors whose head call has overrun its timeout (per job in the call)."""
        now = time.monotonic()
        for slot in self.pool._ready_slots():
            line = self.lines[slot]
            if line and now - line[0].head_since > self.pool.eval_timeout_s * len(line[0].jobs):
                call = line.popleft()
                self.lose_actor(slot, call.jobs, f"timed out after {self.pool.eval_timeout_s:.0f}s")

    # --- what the steps share -------------------------------------------------------------

    def submit(self, slot: int) -> None:
        waiting = [sum(len(call.jobs) for call in line) for line in self.lines]
        jobs = self.pool._chunk(self.queue, self.solo, waiting[slot], sum(waiting))
        ref = self.pool.actors[slot].evaluate_many.remote([job_arguments(j) for j in jobs])
        self.lines[slot].append(Call(ref=ref, jobs=jobs, head_since=None if self.lines[slot] else time.monotonic()))

    def fail(self, slot: int, job: "Job", reason: str) -> None:
        self.attempts[job.key] += 1
        log.warning("evaluation %s failed (attempt %d): %s", job.key, self.attempts[job.key], reason)
        if self.attempts[job.key] > self.pool.max_retries:
            self.on_result(job, Failure(reason, self.attempts[job.key]), self.pool.actors[slot])
        else:
            self.solo.add(job.key)
            self.queue.appendleft(job)

    def lose_actor(self, slot: int, jobs: list["Job"], reason: str, node_check: bool = False) -> None:
        with_node = node_check and len(jobs) == 1 and self.pool._lost_with_node(slot)
        self.pool._replace(slot)
        waiting = [job for call in self.lines[slot] for job in call.jobs]
        self.lines[slot].clear()
        self.queue.extendleft(reversed(waiting))  # not attempted: back in front, uncounted
        if len(jobs) == 1 and not with_node:
            self.fail(slot, jobs[0], reason)
        else:  # whose fault is unknown, or the node's: retry each alone, uncounted
            self.solo.update(job.key for job in jobs)
            self.queue.extendleft(reversed(jobs))
