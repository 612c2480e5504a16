"""A pool of Ray evaluator actors: started, placed on the cluster's nodes, replaced when
lost, dropped when the cluster has no room for them, added when it has room again.

Each actor holds the base model and the expert bank (shared via the object store). The pool
keeps one `Slot` per actor; how jobs travel to the actors, with timeouts, re-dispatch and
bounded retries, is the loop's business (dispatch.py), which works through the pool's
public methods. A UserError raised inside a worker as it starts aborts the whole run.

Nodes: an actor lost with its node (the node is marked dead, or the actor stays unreachable)
does not count against its job's retries. Its replacement gets work only once it has
started; while replacements wait for a place, the pool checks what the live nodes can hold,
and when every place is taken it drops the waiting ones: the pool shrinks, with a message.
With no actor left and no room for one, `ClusterLost` stops the run. A pool below its size
looks again when the live nodes change (a node joins, or comes back under a new id), every
few seconds at most: it starts actors on the room they offer, up to its size, with a message.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .. import OFFLINE_ENV
from . import nodes as cluster
from .batching import Batching
from ..errors import UserError

log = logging.getLogger(__name__)


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


@dataclass(eq=False)  # a slot is itself, whatever its actor: the loop keys its lines by slot
class Slot:
    """One place in the pool: its actor and what is known of it."""

    actor: Any
    probe: Any  # the actor's first call, pending until its model is loaded (then None)
    born: float  # when the actor was spawned: its start timeout runs from there
    node: Optional[str] = None  # the node it runs on, once it has answered

    @property
    def ready(self) -> bool:
        return self.node is not None


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
        regrow_s: float = 5.0,
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
        self.workers = workers  # the size asked for; len(self.slots) after a shrink
        self.eval_timeout_s = eval_timeout_s
        self.max_retries = max_retries
        self.start_timeout_s = start_timeout_s
        self.batching = Batching(prefetch_below_s=prefetch_below_s, chunk_target_s=chunk_target_s)
        self.notify = notify or log.warning
        self.verdict_s = verdict_s  # how long a lost actor's fate is awaited before blaming its node
        self.recent: collections.deque = collections.deque(maxlen=8)  # seconds of the latest evaluations
        self._gone_nodes: set[str] = set()
        self._start_deaths = 0
        self._checked = 0.0
        self.regrow_s = regrow_s  # how often a pool below its size looks at the cluster's nodes
        self._looked = 0.0
        self.restarted = 0
        self.slots: list[Slot] = [self._spawn() for _ in range(workers)]
        self._wait_ready()
        self._nodes_seen = cluster.live_nodes(ray.nodes())

    # --- what the loop uses ---------------------------------------------------------------

    @property
    def actors(self) -> list[Any]:
        return [slot.actor for slot in self.slots]

    def ready(self) -> list[Slot]:
        """The slots whose actor has started (they take work), in pool order."""
        return [slot for slot in self.slots if slot.ready]

    def starting(self) -> list[Slot]:
        return [slot for slot in self.slots if not slot.ready]

    def tend(self) -> None:
        """One look at the cluster between the loop's steps: drop starting actors that have
        no place (every second at most), and grow back where nodes have joined."""
        self._check_placement()
        self._grow()

    def settle(self, slot: Slot) -> None:
        """A starting actor's first call came back: it is ready, or it failed to start."""
        ray = self._ray
        try:
            slot.node = ray.get(slot.probe, timeout=60)
            slot.probe = None
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
            self.replace(slot)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, UserError):
                raise cause from None
            raise RuntimeError(f"a worker failed to start: {cause}") from None

    def replace(self, slot: Slot) -> None:
        """A new actor in the slot; it gets work once it has started."""
        self._kill(slot.actor)
        fresh = self._spawn()
        slot.actor, slot.probe, slot.born, slot.node = fresh.actor, fresh.probe, fresh.born, None
        self.restarted += 1

    def lost_with_node(self, slot: Slot) -> bool:
        """Whether an actor that stopped answering went down with its node (then its job is
        not to blame). Waits up to verdict_s for Ray to declare the node or the actor dead."""
        ray = self._ray
        node = slot.node
        if node is None or node in self._gone_nodes:
            return True
        deadline = time.monotonic() + self.verdict_s
        probe = slot.actor.node.remote()
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
                probe = slot.actor.node.remote()  # no verdict yet
            except ray.exceptions.RayActorError:
                if self._node_alive(node):
                    return False  # the actor died on a live node: counts against the job
                break
            except Exception:
                return False
        self._gone_nodes.add(node)
        self.notify(f"lost the node {node[:8]} with its workers: their evaluations go back to the queue")
        return True

    def shutdown(self) -> None:
        for slot in self.slots:
            self._kill(slot.actor)
        self.slots = []

    # --- the pool's own -------------------------------------------------------------------

    def _spawn(self) -> Slot:
        actor = self._cls.options(**self._options).remote(**self._kwargs)
        # the probe answers once the model is loaded
        return Slot(actor=actor, probe=actor.node.remote(), born=time.monotonic())

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:
            pass

    def _wait_ready(self) -> None:
        """Block until the actors have loaded their models; surface a load error clearly.
        If the cluster cannot place them all, go on with those it placed."""
        while self.starting():
            probes = {slot.probe: slot for slot in self.starting()}
            ready, _ = self._ray.wait(list(probes), num_returns=len(probes), timeout=1.0)
            for ref in ready:
                self.settle(probes[ref])
            self._check_placement(at_start=True)

    def _capacity(self) -> float:
        """How many actors of this pool's shape the live nodes hold in all."""
        return cluster.capacity(self._ray.nodes(), self._options["num_cpus"], self._options["num_gpus"])

    def _shape(self) -> str:
        return cluster.shape(self._options["num_cpus"], self._options["num_gpus"])

    def _node_alive(self, node: str) -> bool:
        return cluster.alive(self._ray.nodes(), node)

    def _grow(self) -> None:
        """Below its size, start actors on the room of nodes that joined. Never waits: a new
        actor gets work once it has started, and one that finds no place is dropped like a
        replacement."""
        now = time.monotonic()
        if len(self.slots) >= self.workers or now - self._looked < self.regrow_s:
            return
        self._looked = now
        nodes = self._ray.nodes()
        seen = cluster.live_nodes(nodes)
        if seen == self._nodes_seen:  # nothing joined: the room is what the pool last measured
            return
        self._nodes_seen = seen
        room = min(self.workers, cluster.capacity(nodes, self._options["num_cpus"], self._options["num_gpus"]))
        added = int(room) - len(self.slots)
        if added > 0:
            self.slots.extend(self._spawn() for _ in range(added))
            self.notify(f"the cluster has room again: the pool grows to {len(self.slots)} of {self.workers} workers")

    def _check_placement(self, at_start: bool = False) -> None:
        """Drop starting actors the cluster has no place for. Every second at most."""
        if not self.slots:
            raise ClusterLost("workers", f"no worker is left, and no live node has room for one ({self._shape()})")
        starting = self.starting()
        now = time.monotonic()
        if not starting or now - self._checked < 1.0:
            return
        self._checked = now
        placed = len(self.slots) - len(starting)
        capacity = self._capacity()
        full = placed >= capacity and (placed > 0 or not at_start)  # at start, an autoscaler may add nodes
        late = [slot for slot in starting if now - slot.born > self.start_timeout_s]
        if placed == 0 and len(late) == len(starting):
            n = len(starting)
            if at_start:
                raise UserError("workers", f"{n} of {n} workers did not start within {self.start_timeout_s:.0f}s "
                                           "(not enough CPUs/GPUs in the cluster?)")
            raise ClusterLost("workers", f"no worker is left, and none found a place in the cluster within "
                                         f"{self.start_timeout_s:.0f}s")
        drop = starting if full else (late if placed > 0 else [])
        for slot in drop:
            self._kill(slot.actor)
            self.slots.remove(slot)
        if not self.slots:
            raise ClusterLost("workers", f"no worker is left, and no live node has room for one ({self._shape()})")
        if drop:
            why = "the cluster can place" if full else "past the start timeout, the cluster has placed"
            self.notify(f"{why} {len(self.slots)} of {self.workers} workers: the pool goes on with "
                        f"{len(self.slots)}")
