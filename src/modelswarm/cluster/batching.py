"""How many jobs travel to an actor in one call, and whether a second call waits on it.

The round trip to an actor costs about a millisecond and a tiny-model evaluation about
ten, so short evaluations travel several to a call and a second call waits on each actor
(it never idles through the round trip to the driver and its journal fsync). Long
evaluations, and jobs that failed before, go alone. Pure: the loop (dispatch.py) asks, with
the durations the pool has seen.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any, Iterable


def typical_s(recent: Iterable[float]) -> float:
    """Mean duration of the latest evaluations (infinite before the first)."""
    seen = list(recent)
    return sum(seen) / len(seen) if seen else math.inf


@dataclass(frozen=True)
class Batching:
    prefetch_below_s: float = 1.0  # evaluations shorter than this are chunked and queued ahead
    chunk_target_s: float = 0.05  # about how long the evaluations of one call take together

    def queue_ahead(self, typical: float) -> bool:
        """Whether a second call waits on each actor."""
        return typical < self.prefetch_below_s

    def call_size(self, typical: float, queued: int, waiting_all: int, waiting_here: int, ready: int) -> int:
        """Jobs in the next call to one actor: while evaluations are short, about
        chunk_target_s of them, up to the actor's fair share of the jobs not yet done
        (`queued` ones and `waiting_all` sent) less the `waiting_here` already sent to it, so
        the first actor served does not take more than the others; otherwise one."""
        if not self.queue_ahead(typical):
            return 1
        share = (queued + waiting_all) // max(1, ready) - waiting_here
        return max(1, min(int(self.chunk_target_s / max(typical, 1e-6)), share))


def take(queue: collections.deque, size: int, solo: set) -> list[Any]:
    """Up to `size` jobs from the front of the queue; a job whose key is in `solo` (it was
    in a failed call) goes alone."""
    chunk = [queue.popleft()]
    while len(chunk) < size and queue and chunk[0].key not in solo and queue[0].key not in solo:
        chunk.append(queue.popleft())
    return chunk
