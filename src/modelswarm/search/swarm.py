"""Particle-swarm search on coefficient vectors (Model Swarms, arXiv:2410.11163).

Every particle is a point x = sum_j c_j * E_j in the span of the experts (the paper's
particles stay in the affine span, sum_j c_j = 1; the base-model anchor at c = 0 leaves
it), so the whole swarm is an N x n matrix of coefficients (N x nK with K layer groups,
`swarm.granularity: layers`): all the paper's operations
(crossover, velocity, step, restart) are linear combinations with one scalar per
particle (per particle and layer group in the velocity update), which keeps this exact. This module never sees a weight; it is pure numpy and seeded.

The control flow is the official code's (github BunsenFeng/model_swarm, search.py): the
stop and restart checks run at the start of an iteration on the score histories, and a
particle that was not evaluated (dropped, or its evaluation failed) keeps its previous
utility, so it never becomes a personal best, the global best or the global worst.

Random draws happen in one documented order (Swarm.create, then per iteration in
Swarm.propose) so that a weight-space reference, or a resumed run, consumes the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import SwarmParams
from .diagnostics import describe
from ..io import num

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
        a, b = rng.choice(len(rows), size=2, replace=False)
        w = rng.uniform(0.0, max_weight)
        rows.append(w * rows[a] + (1.0 - w) * rows[b])
    return np.stack(rows)


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


def velocity_update(
    x: np.ndarray, v: np.ndarray, p: np.ndarray, g: np.ndarray, gw: np.ndarray, r: np.ndarray, phi: np.ndarray
) -> np.ndarray:
    """The paper's update, for all particles at once.

    v <- [r_v phi_v v + r_p phi_p (p - x) + r_g phi_g (g - x) - r_w phi_w (g_w - x)] / sum(r * phi)

    x, v, p: (N, n); g, gw: (n,); r: (N, 4) uniform draws per particle; phi: (4,). With
    layer groups, x, v, p: (N, K, n); g, gw: (K, n); r: (N, K, 4), draws per particle and group.
    """
    w = r * phi
    total = w.sum(axis=-1, keepdims=True)
    total[total == 0] = 1.0  # all four draws zero: keep the (zero) numerator, do not divide by 0
    num = w[..., 0:1] * v + w[..., 1:2] * (p - x) + w[..., 2:3] * (g - x) - w[..., 3:4] * (gw - x)
    return num / total


@dataclass
class Swarm:
    """The search state; mutable, snapshotted whole to state.json after every iteration.

    Histories are those of the official code: history[t] is the global best after
    iteration t (0 = the initial swarm), and a particle's own history has one entry per
    iteration too, so its personal best's age is (iteration + 1) - best_at.
    """

    params: SwarmParams
    x: np.ndarray  # positions (N, n)
    v: np.ndarray  # velocities (N, n)
    rng: np.random.Generator
    scores: np.ndarray  # each particle's utility now (N,): carried over when not evaluated; nan before any
    p: np.ndarray  # personal best positions
    p_scores: np.ndarray
    g: np.ndarray  # global best position (n,)
    g_score: float
    gw: np.ndarray  # all-time global worst position
    gw_score: float
    step: float  # lambda
    iteration: int = 0  # completed iterations; 0 = only the initial swarm scored
    started: bool = False  # the initial swarm has been scored
    initial_scores: np.ndarray | None = None  # the initial swarm's scores (nan: failed)
    best_at: np.ndarray | None = None  # history index at which each personal best was set
    restarts: np.ndarray | None = None  # restarts per particle
    restarted: np.ndarray | None = None  # which particles the last propose() restarted
    evaluate: np.ndarray | None = None  # which particles the last propose() asks to evaluate
    history: list = field(default_factory=list)  # global best score after each iteration
    trace: list = field(default_factory=list)  # per iteration: spread, steps, improvements (diagnostics.py)
    moved: np.ndarray | None = None  # each particle's move in the last propose()
    initial_x: np.ndarray | None = None  # the starting positions; None in a snapshot that predates them

    @classmethod
    def create(cls, n_experts: int, params: SwarmParams, seed: int, base_point: bool = True) -> "Swarm":
        """base_point: whether all-zero coefficients are the base model (the `base` anchor)."""
        rng = np.random.default_rng(seed)
        anchors = anchor_points(n_experts, params.anchors, base_point)
        x = crossover_init(n_experts, swarm_size(n_experts, params), rng, params.crossover_max_weight, anchors)
        x = np.tile(x, (1, coefficient_groups(params)))  # per layer group: each start the same in every group
        if params.velocity_init == "random":
            v = random_velocities(x, rng, coefficient_groups(params))
        else:  # zero, or best (set once the initial scores are known)
            v = np.zeros_like(x)
        n = len(x)
        return cls(
            params=params, x=x, v=v, rng=rng,
            scores=np.full(n, np.nan), p=x.copy(), p_scores=np.full(n, -np.inf),
            g=x[0].copy(), g_score=-np.inf, gw=x[0].copy(), gw_score=np.inf,
            step=params.step_length, initial_scores=np.full(n, np.nan), best_at=np.zeros(n, dtype=np.int64),
            restarts=np.zeros(n, dtype=np.int64), restarted=np.zeros(n, dtype=bool),
            evaluate=np.ones(n, dtype=bool), initial_x=x.copy(),
        )

    @property
    def size(self) -> int:
        return len(self.x)

    def start(self, scores: np.ndarray) -> None:
        """Record the initial swarm's scores (nan: failed): personal bests, global best and worst."""
        scores = np.asarray(scores, dtype=np.float64)
        if np.isnan(scores).all():
            raise ValueError("no initial particle was evaluated")
        self.scores = scores.copy()
        self.initial_scores = scores.copy()
        self.p = self.x.copy()
        self.p_scores = np.where(np.isnan(scores), -np.inf, scores)
        # the official code takes results.index(max) and results.index(min): the first of ties
        best, worst = int(np.nanargmax(scores)), int(np.nanargmin(scores))
        self.g, self.g_score = self.x[best].copy(), float(scores[best])
        self.gw, self.gw_score = self.x[worst].copy(), float(scores[worst])
        if self.params.velocity_init == "best":
            self.v = self.g[None, :] - self.x
        self.started = True
        self.history.append(self.g_score)
        self.trace.append(describe(0, self.x, self.g, self.scores, self.g_score,
                                   evaluated=int((~np.isnan(scores)).sum())))

    def stray(self) -> np.ndarray:
        """Particles whose personal best is restart_patience or more entries old in their
        own history (official: len(hist) - hist.index(best) >= restart_patience * patience)."""
        if not self.params.restart:
            return np.zeros(self.size, dtype=bool)
        return (self.iteration + 1) - self.best_at >= self.params.restart_patience

    def propose(self) -> np.ndarray:
        """Restart stray particles, move every particle one step; returns the new positions.

        Random draws per iteration, in this order: one (N, K, 4) block of U(0,1) (K layer
        groups, else 1), rows = particles, last axis = (r_v, r_p, r_g, r_w) (none when
        weight_randomness is off): each group its own draws, so that groups started equal
        move apart;
        one U(0,1) for drop_iteration and then N for drop_particle, each only when its
        probability is above 0. `evaluate` then says which particles to score.
        """
        assert self.started, "score the initial swarm first"
        prm = self.params
        back = self.stray()
        self.x[back] = self.p[back]
        self.v[back] = 0.0
        self.restarts[back] += 1
        self.restarted = back
        phi = np.array([prm.phi_v, prm.phi_p, prm.phi_g, prm.phi_w])
        k = coefficient_groups(prm)
        r = self.rng.random((self.size, k, 4)) if prm.weight_randomness else np.ones((self.size, k, 4))
        grouped = lambda a: a.reshape(*a.shape[:-1], k, -1)  # noqa: E731  (N, K*n) -> (N, K, n)
        v = velocity_update(grouped(self.x), grouped(self.v), grouped(self.p), grouped(self.g), grouped(self.gw), r, phi)
        self.v = v.reshape(self.x.shape)
        self.moved = self.step * self.v
        self.x = self.x + self.moved
        self.step = max(self.step * prm.step_decay, prm.step_min)
        skip_all = prm.drop_iteration > 0 and self.rng.random() < prm.drop_iteration
        skip = self.rng.random(self.size) < prm.drop_particle if prm.drop_particle > 0 else np.zeros(self.size, bool)
        self.evaluate = ~(skip | skip_all)
        return self.x

    def record(self, scores: np.ndarray) -> None:
        """Scores of the positions from the last propose(), nan where a particle was not
        evaluated (dropped, or failed): it keeps its previous utility, as the official
        dropN path does, so it cannot become a personal best, the global best or worst."""
        scores = np.asarray(scores, dtype=np.float64)
        now = np.where(np.isnan(scores), self.scores, scores)
        self.scores = now
        self.iteration += 1
        better = now > self.p_scores  # nan compares False
        self.p[better] = self.x[better]
        self.p_scores[better] = now[better]
        self.best_at[better] = self.iteration
        if not np.isnan(now).all():
            top = np.nanmax(now)
            if top > self.g_score:  # official: the first particle whose result equals the new g
                best = int(np.flatnonzero(now == top)[0])
                self.g, self.g_score = self.x[best].copy(), float(top)
            low = np.nanmin(now)
            if low < self.gw_score:  # official: copies every tie in turn, so the last one stays
                worst = int(np.flatnonzero(now == low)[-1])
                self.gw, self.gw_score = self.x[worst].copy(), float(low)
        self.history.append(self.g_score)
        self.trace.append(describe(self.iteration, self.x, self.g, now, self.g_score, steps=self.moved,
                                   improved=int(better.sum()), restarts=int(self.restarted.sum()),
                                   evaluated=int((~np.isnan(scores)).sum())))

    @property
    def done(self) -> bool:
        """Official stop rule: the last `patience` entries of the global-best history are equal."""
        h, patience = self.history, self.params.patience
        stalled = len(h) > patience and len(set(h[-patience:])) == 1
        return self.started and (stalled or self.iteration >= self.params.max_iterations)

    def top_k(self, k: int | None = None) -> list[tuple[float, np.ndarray]]:
        """The global best, then the best other distinct personal bests (k in all)."""
        k = k or self.params.top_k
        out: list[tuple[float, np.ndarray]] = [(float(self.g_score), self.g.copy())]
        for i in np.argsort(-self.p_scores, kind="stable"):
            if len(out) >= k:
                break
            if not any(np.array_equal(self.p[i], c) for _, c in out):
                out.append((float(self.p_scores[i]), self.p[i].copy()))
        return out

    # --- snapshot -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        arr = lambda a: np.asarray(a).tolist()  # noqa: E731  float64 repr round-trips exactly
        return {
            "x": arr(self.x), "v": arr(self.v), "scores": arr(self.scores),
            "p": arr(self.p), "p_scores": arr(self.p_scores),
            "g": arr(self.g), "g_score": self.g_score, "gw": arr(self.gw), "gw_score": self.gw_score,
            "step": self.step, "iteration": self.iteration, "started": self.started,
            "initial_scores": arr(self.initial_scores), "best_at": arr(self.best_at),
            "restarts": arr(self.restarts), "restarted": arr(self.restarted), "evaluate": arr(self.evaluate),
            "history": list(self.history), "trace": list(self.trace), "rng": self.rng.bit_generator.state,
            **({"initial_x": arr(self.initial_x)} if self.initial_x is not None else {}),
            **({"group_draws": True} if coefficient_groups(self.params) > 1 else {}),  # see propose()
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], params: SwarmParams) -> "Swarm":
        rng = np.random.default_rng()
        rng.bit_generator.state = d["rng"]
        f = lambda k: np.asarray(d[k], dtype=np.float64)  # noqa: E731
        return cls(
            params=params, x=f("x"), v=f("v"), rng=rng, scores=f("scores"), p=f("p"), p_scores=f("p_scores"),
            g=f("g"), g_score=num(d["g_score"]), gw=f("gw"), gw_score=num(d["gw_score"]),
            step=float(d["step"]), iteration=int(d["iteration"]), started=bool(d["started"]),
            initial_scores=f("initial_scores"), best_at=np.asarray(d["best_at"], dtype=np.int64),
            restarts=np.asarray(d["restarts"], dtype=np.int64), restarted=np.asarray(d["restarted"], dtype=bool),
            evaluate=np.asarray(d["evaluate"], dtype=bool), history=[num(h) for h in d["history"]],
            trace=list(d.get("trace", [])), initial_x=f("initial_x") if "initial_x" in d else None,
        )
