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
from .start import anchor_points, coefficient_groups, crossover_child, crossover_init, random_velocities, swarm_size
from .ties import tie, ahead, first_best, worst
from ..io import num

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
    # utility.tie_break's secondary scores (see ahead()): each particle's now (nan: none), its
    # personal best's, the global best's and worst's (-inf: none)
    ties: np.ndarray | None = None
    p_ties: np.ndarray | None = None
    g_tie: float = -np.inf
    gw_tie: float = -np.inf

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
            evaluate=np.ones(n, dtype=bool), initial_x=x.copy(), ties=np.full(n, np.nan), p_ties=np.full(n, -np.inf),
        )

    @property
    def size(self) -> int:
        return len(self.x)

    def start(self, scores: np.ndarray, ties: np.ndarray | None = None) -> None:
        """Record the initial swarm's scores (nan: failed) and their tie-break scores (nan:
        none, see ahead()): personal bests, global best and worst."""
        scores = np.asarray(scores, dtype=np.float64)
        if np.isnan(scores).all():
            raise ValueError("no initial particle was evaluated")
        ties = np.full(len(scores), np.nan) if ties is None else np.asarray(ties, dtype=np.float64)
        self.scores, self.ties = scores.copy(), ties.copy()
        self.initial_scores = scores.copy()
        self.p = self.x.copy()
        self.p_scores = np.where(np.isnan(scores), -np.inf, scores)
        self.p_ties = tie(ties)
        # the official code takes results.index(max) and results.index(min): the first of ties
        best, low = first_best(scores, ties), worst(scores, ties, last=False)
        self.g, self.g_score, self.g_tie = self.x[best].copy(), float(scores[best]), float(tie(ties[best]))
        self.gw, self.gw_score, self.gw_tie = self.x[low].copy(), float(scores[low]), float(tie(ties[low]))
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

        Random draws per iteration, in this order: with `on_collapse: reseed`, while the swarm
        is collapsed, per reseeded particle (in index order) two distinct starting particles
        and one U(0, crossover_max_weight); one (N, K, 4) block of U(0,1) (K layer
        groups, else 1), rows = particles, last axis = (r_v, r_p, r_g, r_w) (none when
        weight_randomness is off): each group its own draws, so that groups started equal
        move apart;
        one U(0,1) for drop_iteration and then N for drop_particle, each only when its
        probability is above 0. `evaluate` then says which particles to score.
        """
        assert self.started, "score the initial swarm first"
        prm = self.params
        back = self.stray()
        fresh = back & self.collapsed() if prm.on_collapse == "reseed" else np.zeros(self.size, dtype=bool)
        self.x[back] = self.p[back]
        starts = self.initial_x if self.initial_x is not None else self.p
        for i in np.flatnonzero(fresh):  # off the plateau: where the personal bests all are
            self.x[i] = crossover_child(starts, self.rng, prm.crossover_max_weight)
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

    def record(self, scores: np.ndarray, ties: np.ndarray | None = None) -> None:
        """Scores of the positions from the last propose(), nan where a particle was not
        evaluated (dropped, or failed): it keeps its previous utility, as the official
        dropN path does, so it cannot become a personal best, the global best or worst.
        ties: their tie-break scores (nan: none), which order only equal scores (ahead())."""
        scores = np.asarray(scores, dtype=np.float64)
        ties = np.full(len(scores), np.nan) if ties is None else np.asarray(ties, dtype=np.float64)
        now = np.where(np.isnan(scores), self.scores, scores)
        now_ties = np.where(np.isnan(scores), self.ties, ties)
        self.scores, self.ties = now, now_ties
        self.iteration += 1
        better = ahead(now, now_ties, self.p_scores, self.p_ties)  # nan compares False
        self.p[better] = self.x[better]
        self.p_scores[better] = now[better]
        self.p_ties[better] = tie(now_ties[better])
        self.best_at[better] = self.iteration
        if not np.isnan(now).all():
            # official: the first particle whose result equals the new g
            best = first_best(now, now_ties)
            if ahead(now[best], now_ties[best], self.g_score, self.g_tie):
                self.g, self.g_score, self.g_tie = self.x[best].copy(), float(now[best]), float(tie(now_ties[best]))
            # official: copies every tie in turn, so the last one stays
            low = worst(now, now_ties, last=True)
            if ahead(self.gw_score, self.gw_tie, now[low], now_ties[low]):
                self.gw, self.gw_score, self.gw_tie = self.x[low].copy(), float(now[low]), float(tie(now_ties[low]))
        self.history.append(self.g_score)
        self.trace.append(describe(self.iteration, self.x, self.g, now, self.g_score, steps=self.moved,
                                   improved=int(better.sum()), restarts=int(self.restarted.sum()),
                                   evaluated=int((~np.isnan(scores)).sum()), collapsed=self.collapsed()))

    def collapsed(self) -> bool:
        """Every evaluated particle's current score is the same: the swarm sits on one plateau."""
        now = self.scores[~np.isnan(self.scores)]
        return len(now) >= 2 and bool(now.max() == now.min())

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
        for i in np.lexsort((-self.p_ties, -self.p_scores)):  # stable: by score, then tie-break
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
            **({"ties": arr(self.ties), "p_ties": arr(self.p_ties), "g_tie": self.g_tie, "gw_tie": self.gw_tie}
               if self.tie_breaks() else {}),
        }

    def tie_breaks(self) -> bool:
        """Has any evaluation brought a tie-break score (utility.tie_break)?"""
        return bool(np.isfinite(self.p_ties).any() or not np.isnan(self.ties).all())

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
            ties=f("ties") if "ties" in d else np.full(len(d["x"]), np.nan),
            p_ties=f("p_ties") if "p_ties" in d else np.full(len(d["x"]), -np.inf),
            g_tie=num(d.get("g_tie", -np.inf)), gw_tie=num(d.get("gw_tie", -np.inf)),
        )
