"""What the swarm did in one iteration, in numbers a user can read off a failed search.

A search that never leaves its best expert shows it here: the particles' spread shrinks
to nothing around the global best, steps shrink with it, and no personal best improves.
Distances are Euclidean, in coefficient space (one coordinate per expert).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np


def _mean_pairwise(x: np.ndarray) -> float:
    n = len(x)
    if n < 2:
        return 0.0
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    return float(d.sum() / (n * (n - 1)))


def describe(iteration: int, x: np.ndarray, g: np.ndarray, scores: np.ndarray, g_score: float,
             steps: Optional[np.ndarray] = None, improved: int = 0, restarts: int = 0,
             evaluated: Optional[int] = None, collapsed: bool = False) -> dict[str, Any]:
    """One iteration's record: spread of the swarm, how far it moved, what it gained.

    x: positions after the iteration; steps: each particle's move this iteration (None for
    the initial swarm); improved: particles whose personal best rose; restarts: particles sent
    back to their personal best at its start; collapsed: every particle's score is the same."""
    finite = scores[np.isfinite(scores)]
    norms = np.linalg.norm(steps, axis=1) if steps is not None else np.zeros(len(x))
    return {
        "iteration": iteration,
        "best": g_score if math.isfinite(g_score) else None,
        "mean": float(finite.mean()) if len(finite) else None,
        "spread": round(_mean_pairwise(x), 6),  # mean distance between two particles
        "to_best": round(float(np.linalg.norm(x - g[None, :], axis=1).mean()), 6),  # mean distance to g
        "step_mean": round(float(norms.mean()), 6),
        "step_max": round(float(norms.max(initial=0.0)), 6),
        "improved": int(improved),
        "restarts": int(restarts),
        "evaluated": int(len(x) if evaluated is None else evaluated),
        "collapsed": bool(collapsed),
    }
