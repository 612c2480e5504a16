"""Ties on a plateau: the order of two scores when utility.tie_break records a secondary one.

Exact match and multiple choice are steps: around one expert many points score exactly the
same, and the paper's strict `>` lets none of them lead, so a swarm there has nothing to
climb and its restarts send particles back onto the same plateau. A tie-break score
(continuous, recorded with each evaluation: objectives/base.py, Score.secondary) orders equal
scores and nothing else; where there is none (nan) every rule here is the official one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def tie(t: np.ndarray) -> np.ndarray:
    """Tie-break scores as compared: none (nan) below any."""
    return np.where(np.isnan(t), -np.inf, t)


def ahead(a: Any, a_tie: Any, b: Any, b_tie: Any) -> Any:
    """Is score a better than b: higher, or equal with a higher tie-break score? Without
    tie-break scores (nan) this is the official `a > b`."""
    a_tie, b_tie = tie(np.asarray(a_tie, dtype=np.float64)), tie(np.asarray(b_tie, dtype=np.float64))
    return (a > b) | ((a == b) & (a_tie > b_tie))


def first_best(scores: np.ndarray, ties: np.ndarray) -> int:
    """The first particle with the highest score (and, among those, the highest tie-break)."""
    at = np.flatnonzero(scores == np.nanmax(scores))
    t = tie(ties[at])
    return int(at[np.flatnonzero(t == t.max())[0]])


def worst(scores: np.ndarray, ties: np.ndarray, last: bool) -> int:
    """The first (or last) particle with the lowest score (and, among those, the lowest tie-break)."""
    at = np.flatnonzero(scores == np.nanmin(scores))
    t = tie(ties[at])
    return int(at[np.flatnonzero(t == t.min())[-1 if last else 0]])
