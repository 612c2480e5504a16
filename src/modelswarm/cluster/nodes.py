"""What the cluster's live nodes hold, read from `ray.nodes()` (a list of node records)."""

from __future__ import annotations

import math
from typing import Any, Sequence


def capacity(nodes: Sequence[dict[str, Any]], num_cpus: float, num_gpus: float) -> float:
    """How many actors taking num_cpus and num_gpus the live nodes hold in all (infinite
    for an actor that takes neither)."""
    total = 0.0
    for node in nodes:
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        fit = math.inf
        if num_cpus > 0:
            fit = min(fit, math.floor(res.get("CPU", 0.0) / num_cpus + 1e-9))
        if num_gpus > 0:
            fit = min(fit, math.floor(res.get("GPU", 0.0) / num_gpus + 1e-9))
        total += fit
    return total


def alive(nodes: Sequence[dict[str, Any]], node_id: str) -> bool:
    return any(n.get("NodeID") == node_id and n.get("Alive") for n in nodes)


def live_nodes(nodes: Sequence[dict[str, Any]]) -> frozenset[str]:
    """The ids of the live nodes: a node that joins, or restarts (under a new id), changes it."""
    return frozenset(n.get("NodeID") for n in nodes if n.get("Alive"))


def shape(num_cpus: float, num_gpus: float) -> str:
    need = [f"{n:g} {unit}" for n, unit in ((num_cpus, "CPU"), (num_gpus, "GPU")) if n > 0]
    return f"a worker takes {' and '.join(need)}" if need else "a worker takes no CPU or GPU"
