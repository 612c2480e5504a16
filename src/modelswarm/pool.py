"""A pool of Ray evaluator actors with timeouts, re-dispatch and bounded retries.

Jobs are coefficient rows. Each actor holds the base model and the expert bank (shared via
the object store) and evaluates the rows of one call at a time (one row, or a few short
ones), with at most one more call queued on it. A job whose actor dies or overruns its
timeout goes back to the queue and the actor is replaced; after `max_retries` failed
attempts the job is reported as failed (the swarm treats it as not evaluated). A UserError raised
inside a worker (bad utility function, bad data) aborts the whole run instead.

Nodes: an actor lost with its node (the node is marked dead, or the actor stays unreachable)
does not count against its job's retries. Its replacement gets work only once it has
started; while replacements wait for a place, the pool checks what the live nodes can hold,
and when every place is taken it drops the waiting ones: the pool shrinks, with a message.
With no actor left and no room for one, `ClusterLost` stops the run.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import OFFLINE_ENV
from .errors import UserError
from .worker import EvalResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    key: Any
    candidate: Any  # a candidates.Candidate (or a coefficient row as its numbers)
    split: str = "val"
    bound: Optional[float] = None  # early exit below this score (None: score fully)


@dataclass(frozen=True)
class Failure:
    reason: str
    attempts: int


def job_arguments(job: Job) -> tuple:
    """The arguments of Evaluator.evaluate for one job."""
    return (job.candidate, job.split, job.bound)


class ClusterLost(UserError):
    """No worker is left and the live nodes of the cluster have no room for one."""


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
        notify: Optional[Callable[[str], None]] = None,
        verdict_s: float = 10.0,
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
        self.workers = workers  # the size asked for; len(self.actors) after a shrink
        self.eval_timeout_s = eval_timeout_s
        self.max_retries = max_retries
        self.start_timeout_s = start_timeout_s
        self.prefetch_below_s = prefetch_below_s  # evaluations shorter than this are chunked and queued ahead
        self.chunk_target_s = chunk_target_s
        self.notify = notify or log.warning
        self.verdict_s = verdict_s  # how long a lost actor's fate is awaited before blaming its node
        self._recent: collections.deque = collections.deque(maxlen=8)  # seconds of the latest evaluations
        # per slot: the actor, its node once it has answered (None while it starts), the
        # pending call that tells it has started, when it was spawned; and, during run(),
        # its line of calls (dispatch.Call)
        self.actors: list[Any] = []
        self._nodes: list[Optional[str]] = []
        self._probes: list[Any] = []
        self._born: list[float] = []
        self._lines: list[collections.deque] = []
        self._gone_nodes: set[str] = set()
        self._start_deaths = 0
        self._checked = 0.0
        self.restarted = 0
        for _ in range(workers):
            self.actors.append(None)
            self._nodes.append(None)
            self._probes.append(None)
            self._born.append(0.0)
            self._set(len(self.actors) - 1, self._spawn())
        self._wait_ready()

    def _spawn(self):
        return self._cls.options(**self._options).remote(**self._kwargs)

    def _set(self, slot: int, actor: Any) -> None:
        self.actors[slot] = actor
        self._nodes[slot] = None
        self._probes[slot] = actor.node.remote()  # answers once the model is loaded
        self._born[slot] = time.monotonic()

    def _starting(self) -> list[int]:
        return [s for s in range(len(self.actors)) if self._nodes[s] is None]

    def _ready_slots(self) -> list[int]:
        return [s for s in range(len(self.actors)) if self._nodes[s] is not None]

    def _wait_ready(self) -> None:
        """Block until the actors have loaded their models; surface a load error clearly.
        If the cluster cannot place them all, go on with those it placed."""
        while self._starting():
            probes = {self._probes[s]: s for s in self._starting()}
            ready, _ = self._ray.wait(list(probes), num_returns=len(probes), timeout=1.0)
            for ref in ready:
                self._settle(probes[ref])
            self._check_placement(at_start=True)

    def _settle(self, slot: int) -> None:
        """A starting actor's first call came back: it is ready, or it failed to start."""
        ray = self._ray
        try:
            self._nodes[slot] = ray.get(self._probes[slot], timeout=60)
            self._probes[slot] = None
            return
        except UserError:
            raise
        except ray.exceptions.RayActorError as exc:
            if exc.actor_init_failed:  # the constructor raised: model load, bad bank, ...
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, UserError):
                    raise cause from None
                raise RuntimeError(f"a worker failed to start: {cause}") from None
            # it died before it ran (its node was lost): start another where there is room
            self._start_deaths += 1
            if self._start_deaths > 3 * self.workers + 3:
                raise RuntimeError(f"workers keep dying as they start: {exc}") from None
            self._replace(slot)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, UserError):
                raise cause from None
            raise RuntimeError(f"a worker failed to start: {cause}") from None

    def _capacity(self) -> float:
        """How many actors of this pool's shape the live nodes hold in all."""
        cpus, gpus = self._options["num_cpus"], self._options["num_gpus"]
        total = 0.0
        for node in self._ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            fit = math.inf
            if cpus > 0:
                fit = min(fit, math.floor(res.get("CPU", 0.0) / cpus + 1e-9))
            if gpus > 0:
                fit = min(fit, math.floor(res.get("GPU", 0.0) / gpus + 1e-9))
            total += fit
        return total

    def _shape(self) -> str:
        need = [f"{self._options[k]:g} {unit}" for k, unit in (("num_cpus", "CPU"), ("num_gpus", "GPU"))
                if self._options[k] > 0]
        return f"a worker takes {' and '.join(need)}" if need else "a worker takes no CPU or GPU"

    def _node_alive(self, node: str) -> bool:
        return any(n.get("NodeID") == node and n.get("Alive") for n in self._ray.nodes())

    def _check_placement(self, at_start: bool = False) -> None:
        """Drop starting actors the cluster has no place for. Every second at most."""
        if not self.actors:
            raise ClusterLost("workers", f"no worker is left, and no live node has room for one ({self._shape()})")
        starting = self._starting()
        now = time.monotonic()
        if not starting or now - self._checked < 1.0:
            return
        self._checked = now
        placed = len(self.actors) - len(starting)
        capacity = self._capacity()
        full = placed >= capacity and (placed > 0 or not at_start)  # at start, an autoscaler may add nodes
        late = [s for s in starting if now - self._born[s] > self.start_timeout_s]
        if placed == 0 and len(late) == len(starting):
            n = len(starting)
            if at_start:
                raise UserError("workers", f"{n} of {n} workers did not start within {self.start_timeout_s:.0f}s "
                                           "(not enough CPUs/GPUs in the cluster?)")
            raise ClusterLost("workers", f"no worker is left, and none found a place in the cluster within "
                                         f"{self.start_timeout_s:.0f}s")
        drop = starting if full else (late if placed > 0 else [])
        for slot in reversed(drop):
            self._drop(slot)
        if not self.actors:
            raise ClusterLost("workers", f"no worker is left, and no live node has room for one ({self._shape()})")
        if drop:
            why = "the cluster can place" if full else "past the start timeout, the cluster has placed"
            self.notify(f"{why} {len(self.actors)} of {self.workers} workers: the pool goes on with "
                        f"{len(self.actors)}")

    def _drop(self, slot: int) -> None:
        try:
            self._ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        for per_slot in (self.actors, self._nodes, self._probes, self._born):
            del per_slot[slot]
        if self._lines:
            assert not self._lines[slot], "only an actor that has not started is dropped"
            del self._lines[slot]

    def _lost_with_node(self, slot: int) -> bool:
        """Whether an actor that stopped answering went down with its node (then its job is
        not to blame). Waits up to verdict_s for Ray to declare the node or the actor dead."""
        ray = self._ray
        node = self._nodes[slot]
        if node is None or node in self._gone_nodes:
            return True
        deadline = time.monotonic() + self.verdict_s
        probe = self.actors[slot].node.remote()
        while time.monotonic() < deadline:
            if not self._node_alive(node):
                break
            done, _ = ray.wait([probe], timeout=0.25)
            if not done:
                continue
            try:
                ray.get(probe, timeout=10)
                return True  # it answers again: a dropped connection, not the job's doing
            except ray.exceptions.ActorUnavailableError:
                probe = self.actors[slot].node.remote()  # no verdict yet
            except ray.exceptions.RayActorError:
                if self._node_alive(node):
                    return False  # the actor died on a live node: counts against the job
                break
            except Exception:
                return False
        self._gone_nodes.add(node)
        self.notify(f"lost the node {node[:8]} with its workers: their evaluations go back to the queue")
        return True

    def _replace(self, slot: int) -> None:
        try:
            self._ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        self._set(slot, self._spawn())
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
            share = (len(queue) + waiting_all) // max(1, len(self._ready_slots())) - waiting_here
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
        """Evaluate all jobs; on_result(job, result_or_failure, actor) as each one finishes
        (how jobs travel to the actors and come back: dispatch.py)."""
        from .dispatch import Dispatch

        run = Dispatch(self, jobs, on_result)
        try:
            while run.busy():
                self._check_placement()
                run.fill()
                run.wait(poll_s)
                run.expire()
        finally:
            self._lines = []

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self.actors = []
