"""Particle-swarm search on coefficient vectors (Model Swarms, arXiv:2410.11163).

Every particle is a point x = sum_j c_j * E_j in the affine span of the experts, so the
whole swarm is an N x n matrix of coefficients: all the paper's operations (crossover,
velocity, step, restart) are linear combinations with one scalar per particle, which keeps
this exact. This module never sees a weight; it is pure numpy and seeded.

Random draws happen in one documented order (see Swarm.__init__ and Swarm.propose) so that
a weight-space reference, or a resumed run, consumes the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SwarmParams


def crossover_init(n_experts: int, size: int, rng: np.random.Generator, max_weight: float) -> np.ndarray:
    """The experts themselves, then children w*a + (1-w)*b of two random members, w ~ U[0, max_weight)."""
    rows = [row for row in np.eye(n_experts)]
    while len(rows) < size:
        a, b = rng.choice(len(rows), size=2, replace=False)
        w = rng.uniform(0.0, max_weight)
        rows.append(w * rows[a] + (1.0 - w) * rows[b])
    return np.stack(rows)


def random_velocities(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """v_i = x_j - x_i for a random other particle j."""
    n = len(x)
    v = np.empty_like(x)
    for i in range(n):
        j = rng.integers(n - 1)
        j += j >= i  # skip i itself
        v[i] = x[j] - x[i]
    return v


def velocity_update(
    x: np.ndarray, v: np.ndarray, p: np.ndarray, g: np.ndarray, gw: np.ndarray, r: np.ndarray, phi: np.ndarray
) -> np.ndarray:
    """The paper's update, for all particles at once.

    v <- [r_v phi_v v + r_p phi_p (p - x) + r_g phi_g (g - x) - r_w phi_w (g_w - x)] / sum(r * phi)

    x, v, p: (N, n); g, gw: (n,); r: (N, 4) uniform draws per particle; phi: (4,).
    """
    w = r * phi
    total = w.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0  # all four draws zero: keep the (zero) numerator, do not divide by 0
    num = w[:, 0:1] * v + w[:, 1:2] * (p - x) + w[:, 2:3] * (g - x) - w[:, 3:4] * (gw - x)
    return num / total


@dataclass
class Swarm:
    """The search state; mutable, snapshotted whole to state.json after every iteration."""

    params: SwarmParams
    x: np.ndarray  # positions (N, n)
    v: np.ndarray  # velocities (N, n)
    rng: np.random.Generator
    scores: np.ndarray  # latest score of each particle (N,), nan before the first evaluation
    p: np.ndarray  # personal best positions
    p_scores: np.ndarray
    g: np.ndarray  # global best position (n,)
    g_score: float
    gw: np.ndarray  # all-time global worst position
    gw_score: float
    step: float  # lambda
    iteration: int = 0  # completed iterations; 0 = only the initial swarm scored
    started: bool = False  # the initial swarm has been scored
    stale: np.ndarray | None = None  # iterations since each personal best improved
    restart_pending: np.ndarray | None = None
    restarts: np.ndarray | None = None
    g_stale: int = 0  # iterations since the global best changed
    history: list | None = None  # global best score after each iteration (index 0 = initial)

    @classmethod
    def create(cls, n_experts: int, params: SwarmParams, seed: int) -> "Swarm":
        rng = np.random.default_rng(seed)
        size = params.size if params.size is not None else max(n_experts, 10)
        x = crossover_init(n_experts, size, rng, params.crossover_max_weight)
        if params.velocity_init == "random":
            v = random_velocities(x, rng)
        else:  # zero, or best (set once the initial scores are known)
            v = np.zeros_like(x)
        n = len(x)
        return cls(
            params=params, x=x, v=v, rng=rng,
            scores=np.full(n, np.nan), p=x.copy(), p_scores=np.full(n, -np.inf),
            g=x[0].copy(), g_score=-np.inf, gw=x[0].copy(), gw_score=np.inf,
            step=params.step_length, stale=np.zeros(n, dtype=np.int64),
            restart_pending=np.zeros(n, dtype=bool), restarts=np.zeros(n, dtype=np.int64), history=[],
        )

    @property
    def size(self) -> int:
        return len(self.x)

    def start(self, scores: np.ndarray) -> None:
        """Record the initial swarm's scores: personal bests, global best and worst."""
        scores = np.asarray(scores, dtype=np.float64)
        self.scores = scores.copy()
        self.p = self.x.copy()
        self.p_scores = scores.copy()
        best, worst = int(np.argmax(scores)), int(np.argmin(scores))
        self.g, self.g_score = self.x[best].copy(), float(scores[best])
        self.gw, self.gw_score = self.x[worst].copy(), float(scores[worst])
        if self.params.velocity_init == "best":
            self.v = self.g[None, :] - self.x
        self.started = True
        self.history.append(self.g_score)

    def propose(self) -> np.ndarray:
        """Move every particle one step; returns the new positions to evaluate.

        Random draws: one (N, 4) block of U(0,1) per iteration, rows = particles,
        columns = (r_v, r_p, r_g, r_w).
        """
        assert self.started, "score the initial swarm first"
        back = self.restart_pending
        self.x[back] = self.p[back]
        self.v[back] = 0.0
        self.restart_pending[:] = False
        prm = self.params
        phi = np.array([prm.phi_v, prm.phi_p, prm.phi_g, prm.phi_w])
        r = self.rng.random((self.size, 4))
        self.v = velocity_update(self.x, self.v, self.p, self.g, self.gw, r, phi)
        self.x = self.x + self.step * self.v
        self.step = max(self.step * prm.step_decay, prm.step_min)
        return self.x

    def record(self, scores: np.ndarray) -> None:
        """Scores of the positions from the last propose(): update bests, restarts, counters."""
        scores = np.asarray(scores, dtype=np.float64)
        self.scores = scores.copy()
        better = scores > self.p_scores
        self.p[better] = self.x[better]
        self.p_scores[better] = scores[better]
        self.stale[better] = 0
        self.stale[~better] += 1
        best, worst = int(np.argmax(scores)), int(np.argmin(scores))
        if scores[best] > self.g_score:
            self.g, self.g_score = self.x[best].copy(), float(scores[best])
            self.g_stale = 0
        else:
            self.g_stale += 1
        if scores[worst] < self.gw_score:
            self.gw, self.gw_score = self.x[worst].copy(), float(scores[worst])
        stray = self.stale >= self.params.restart_patience
        self.restart_pending |= stray
        self.restarts[stray] += 1
        self.stale[stray] = 0
        self.iteration += 1
        self.history.append(self.g_score)

    @property
    def done(self) -> bool:
        return self.started and (
            self.g_stale >= self.params.patience or self.iteration >= self.params.max_iterations
        )

    def top_k(self, k: int | None = None) -> list[tuple[float, np.ndarray]]:
        """The k best distinct personal bests, best first (the global best is the first)."""
        k = k or self.params.top_k
        order = np.argsort(-self.p_scores, kind="stable")
        out: list[tuple[float, np.ndarray]] = []
        for i in order:
            if not any(np.array_equal(self.p[i], c) for _, c in out):
                out.append((float(self.p_scores[i]), self.p[i].copy()))
            if len(out) == k:
                break
        return out

    # --- snapshot -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        arr = lambda a: np.asarray(a).tolist()  # noqa: E731  float64 repr round-trips exactly
        return {
            "x": arr(self.x), "v": arr(self.v), "scores": arr(self.scores),
            "p": arr(self.p), "p_scores": arr(self.p_scores),
            "g": arr(self.g), "g_score": self.g_score, "gw": arr(self.gw), "gw_score": self.gw_score,
            "step": self.step, "iteration": self.iteration, "started": self.started,
            "stale": arr(self.stale), "restart_pending": arr(self.restart_pending),
            "restarts": arr(self.restarts), "g_stale": self.g_stale, "history": list(self.history),
            "rng": self.rng.bit_generator.state,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], params: SwarmParams) -> "Swarm":
        rng = np.random.default_rng()
        rng.bit_generator.state = d["rng"]
        f = lambda k: np.asarray(d[k], dtype=np.float64)  # noqa: E731
        return cls(
            params=params, x=f("x"), v=f("v"), rng=rng, scores=f("scores"), p=f("p"), p_scores=f("p_scores"),
            g=f("g"), g_score=float(d["g_score"]), gw=f("gw"), gw_score=float(d["gw_score"]),
            step=float(d["step"]), iteration=int(d["iteration"]), started=bool(d["started"]),
            stale=np.asarray(d["stale"], dtype=np.int64), restart_pending=np.asarray(d["restart_pending"], dtype=bool),
            restarts=np.asarray(d["restarts"], dtype=np.int64), g_stale=int(d["g_stale"]), history=list(d["history"]),
        )
