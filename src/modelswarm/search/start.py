"""The starting swarm: the experts, the anchors the config names, crossover children, and
the first velocities (the official code's initialisation, search.py; README: "The search,
step by step")."""

from __future__ import annotations

import numpy as np

from ..config import SwarmParams

PAPER_SIZE = 20  # N in the paper and the official scripts (--initial_experts_num 20)


def swarm_size(n_experts: int, params: SwarmParams) -> int:
    """The configured size, or the paper's N (the experts plus crossover children)."""
    return params.size if params.size is not None else max(n_experts, PAPER_SIZE)


def coefficient_groups(params: SwarmParams) -> int:
    """K: a particle has K groups of n coefficients (`granularity: layers`), else 1."""
    return params.layer_groups if params.granularity == "layers" else 1


def anchor_points(n_experts: int, anchors: list[str], base_point: bool) -> list[np.ndarray]:
    """The extra starting points the config names: `uniform` (1/n each) and `base` (all zeros,
    the base model; only where base_point says zero is the base model, see baselines.py)."""
    rows = {"uniform": np.full(n_experts, 1.0 / n_experts), "base": np.zeros(n_experts)}
    return [rows[a] for a in anchors if a != "base" or base_point]


def crossover_init(n_experts: int, size: int, rng: np.random.Generator, max_weight: float,
                   anchors: list[np.ndarray] = ()) -> np.ndarray:
    """The experts themselves, the anchors (while there is room), then children
    w*a + (1-w)*b of two random members, w ~ U[0, max_weight)."""
    rows = [row for row in np.eye(n_experts)] + list(anchors)[:max(size - n_experts, 0)]
    while len(rows) < size:
        rows.append(crossover_child(rows, rng, max_weight))
    return np.stack(rows)


def crossover_child(rows, rng: np.random.Generator, max_weight: float) -> np.ndarray:
    """w*a + (1-w)*b of two distinct random rows, w ~ U[0, max_weight): drawn in that order."""
    a, b = rng.choice(len(rows), size=2, replace=False)
    w = rng.uniform(0.0, max_weight)
    return w * rows[a] + (1.0 - w) * rows[b]


def off_the_simplex(x: np.ndarray, n_experts: int) -> int:
    """Starting particles whose coefficients (in some layer group) do not sum to 1: the base
    point and every crossover child with it among its ancestors, which scale the experts'
    deltas as a whole; an official starting swarm has none."""
    sums = x.reshape(len(x), -1, n_experts).sum(axis=2)
    return int((~np.isclose(sums, 1.0)).any(axis=1).sum())


def random_velocities(x: np.ndarray, rng: np.random.Generator, groups: int = 1) -> np.ndarray:
    """v_i = x_j - x_i for a random other particle j, drawn for each layer group on its own
    (the groups' starts are equal, so one j for all of them would keep them equal)."""
    n = len(x)
    v = np.empty_like(x)
    width = x.shape[1] // groups
    for i in range(n):
        for g in range(groups):
            j = rng.integers(n - 1)
            j += j >= i  # skip i itself
            cols = slice(g * width, (g + 1) * width)
            v[i, cols] = x[j, cols] - x[i, cols]
    return v
