"""One run of jobs on the pool: hand jobs to the actors, collect results, retry failures.

Each actor has a line of at most two calls: while evaluations are short, a second call
waits on the actor so it never idles through the round trip to the driver (and its
journal fsync). Near the end of the queue, and for long evaluations, jobs are handed out
only as actors free up, which balances the load better (the policy: batching.py). A call
that fails as a whole (its actor died or overran) sends its jobs back one by one, so only a
job's own failures count against its retries, and a lost node's not at all.

The loop is four named steps (`fill`, `wait`, `collect`, `expire`) over one record type,
`jobs.Call`; the pool (pool.py) owns the actors and their replacement, and knows nothing
of the loop.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable, Sequence

from .batching import take, typical_s
from ..errors import UserError, error_line
from .jobs import Call, Failure, Job, job_arguments
from .pool import EvaluatorPool, Slot
from .worker import EvalResult

log = logging.getLogger(__name__)

OnResult = Callable[[Job, "EvalResult | Failure", Any], None]


def run_jobs(pool: EvaluatorPool, jobs: Sequence[Job], on_result: OnResult, poll_s: float = 0.5) -> None:
    """Evaluate all jobs on the pool; on_result(job, result_or_failure, actor) as each one
    finishes."""
    run = Dispatch(pool, jobs, on_result)
    while run.busy():
        pool.tend()
        run.fill()
        run.wait(poll_s)
        run.expire()


class Dispatch:
    def __init__(self, pool: EvaluatorPool, jobs: Sequence[Job], on_result: OnResult):
        import ray

        self._ray = ray
        self.pool = pool
        self.on_result = on_result
        self.queue: collections.deque = collections.deque(jobs)
        self.attempts: dict[Any, int] = collections.defaultdict(int)
        self.solo: set = set()  # keys of jobs that were in a failed call: they go alone from now on
        # the calls waiting on each actor; a slot the pool drops has none (it never started)
        self.lines: dict[Slot, collections.deque[Call]] = collections.defaultdict(collections.deque)

    def busy(self) -> bool:
        return bool(self.queue) or any(self.lines.values())

    # --- the four steps -------------------------------------------------------------------

    def fill(self) -> None:
        """Give every idle ready actor a call; while evaluations are short, queue a second."""
        ready = self.pool.ready()
        for slot in ready:
            if self.queue and not self.lines[slot]:
                self.submit(slot)
        if self.pool.batching.queue_ahead(typical_s(self.pool.recent)):
            for slot in ready:
                if len(self.queue) > len(ready) and len(self.lines[slot]) == 1:
                    self.submit(slot)

    def wait(self, poll_s: float) -> None:
        """Block until one head call or one starting actor answers (or poll_s), and handle it."""
        heads = {self.lines[slot][0].ref: slot for slot in self.pool.ready() if self.lines[slot]}
        probes = {slot.probe: slot for slot in self.pool.starting()}
        if not heads and not probes:
            time.sleep(poll_s)
            return
        ready, _ = self._ray.wait(list(heads) + list(probes), num_returns=1, timeout=poll_s)
        for ref in ready:
            if ref in probes:
                self.pool.settle(probes[ref])
            else:
                self.collect(heads[ref])

    def collect(self, slot: Slot) -> None:
        """The head call of an actor came back: deliver its results, or handle its failure."""
        ray = self._ray
        line = self.lines[slot]
        call = line.popleft()
        if line:
            line[0].head_since = time.monotonic()
        try:
            results = ray.get(call.ref, timeout=60)
        except UserError as exc:  # Ray's copy carries the worker's traceback in its text: one line only
            raise UserError(exc.where, exc.problem) from None
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
            self.pool.recent.append(result.seconds)
            self.on_result(job, result, slot.actor)

    def expire(self) -> None:
        """Replace actors whose head call has overrun its timeout (per job in the call)."""
        now = time.monotonic()
        timeout = self.pool.eval_timeout_s
        for slot in self.pool.ready():
            line = self.lines[slot]
            if line and now - line[0].head_since > timeout * len(line[0].jobs):
                call = line.popleft()
                self.lose_actor(slot, call.jobs, f"timed out after {timeout:.0f}s")

    # --- what the steps share -------------------------------------------------------------

    def submit(self, slot: Slot) -> None:
        waiting = {s: sum(len(call.jobs) for call in line) for s, line in self.lines.items()}
        size = self.pool.batching.call_size(typical_s(self.pool.recent), queued=len(self.queue),
                                            waiting_all=sum(waiting.values()), waiting_here=waiting.get(slot, 0),
                                            ready=len(self.pool.ready()))
        jobs = take(self.queue, size, self.solo)
        line = self.lines[slot]
        ref = slot.actor.evaluate_many.remote([job_arguments(j) for j in jobs])
        line.append(Call(ref=ref, jobs=jobs, head_since=None if line else time.monotonic()))

    def fail(self, slot: Slot, job: Job, reason: str) -> None:
        self.attempts[job.key] += 1
        log.warning("evaluation %s failed (attempt %d): %s", job.key, self.attempts[job.key], reason)
        if self.attempts[job.key] > self.pool.max_retries:
            self.on_result(job, Failure(reason, self.attempts[job.key]), slot.actor)
        else:
            self.solo.add(job.key)
            self.queue.appendleft(job)

    def lose_actor(self, slot: Slot, jobs: list[Job], reason: str, node_check: bool = False) -> None:
        with_node = node_check and len(jobs) == 1 and self.pool.lost_with_node(slot)
        self.pool.replace(slot)
        line = self.lines[slot]
        waiting = [job for call in line for job in call.jobs]
        line.clear()
        self.queue.extendleft(reversed(waiting))  # not attempted: back in front, uncounted
        if len(jobs) == 1 and not with_node:
            self.fail(slot, jobs[0], reason)
        else:  # whose fault is unknown, or the node's: retry each alone, uncounted
            self.solo.update(job.key for job in jobs)
            self.queue.extendleft(reversed(jobs))
