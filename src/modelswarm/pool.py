"""A pool of Ray evaluator actors with timeouts, re-dispatch and bounded retries.

Jobs are coefficient rows. Each actor holds the base model and the expert bank (shared via
the object store) and evaluates one row at a time. A job whose actor dies or overruns its
timeout goes back to the queue and the actor is replaced; after `max_retries` failed
attempts the job is reported as failed (the coordinator scores it -inf). A UserError raised
inside a worker (bad utility function, bad data) aborts the whole run instead.
"""

from __future__ import annotations

import collections
import logging
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

    def _replace(self, actor) -> Any:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:
            pass
        new = self._spawn()
        self.actors[self.actors.index(actor)] = new
        self.restarted += 1
        return new

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[Job, EvalResult | Failure, Any], None],
        poll_s: float = 0.5,
    ) -> None:
        """Evaluate all jobs; on_result(job, result_or_failure, actor) as each one finishes."""
        ray = self._ray
        queue = collections.deque(jobs)
        attempts: dict[Any, int] = collections.defaultdict(int)
        errors: dict[Any, str] = {}
        idle = list(self.actors)
        running: dict[Any, tuple[Any, Job, float]] = {}  # ref -> (actor, job, started)

        def retry(job: Job, actor, reason: str, replace: bool) -> None:
            attempts[job.key] += 1
            errors[job.key] = reason
            log.warning("evaluation %s failed (attempt %d): %s", job.key, attempts[job.key], reason)
            if replace:
                actor = self._replace(actor)
            idle.append(actor)
            if attempts[job.key] > self.max_retries:
                on_result(job, Failure(reason, attempts[job.key]), actor)
            else:
                queue.appendleft(job)

        while queue or running:
            while queue and idle:
                actor, job = idle.pop(0), queue.popleft()
                running[actor.evaluate.remote(list(job.coeffs), job.split, job.bound)] = (actor, job, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=poll_s)
            for ref in ready:
                actor, job, _ = running.pop(ref)
                try:
                    result = ray.get(ref, timeout=60)
                except UserError:
                    raise
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                    retry(job, actor, f"worker lost ({type(exc).__name__})", replace=True)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, UserError):
                        raise cause from None
                    retry(job, actor, f"{type(cause or exc).__name__}: {str(cause or exc).splitlines()[0]}",
                          replace=False)
                    continue
                idle.append(actor)
                on_result(job, result, actor)
            now = time.monotonic()
            for ref, (actor, job, started) in list(running.items()):
                if now - started > self.eval_timeout_s:
                    running.pop(ref)
                    retry(job, actor, f"timed out after {self.eval_timeout_s:.0f}s", replace=True)

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self.actors = []
