"""The coefficient form is exact: a naive search on full weights gives the same weights.

The reference below works the way the paper's code does, on named weight tensors (here
LoRA-like A/B matrices), particle by particle, with no notion of coefficients, and with the
official control flow (search.py: restart checks on each particle's score history at the
start of an iteration, ties for a new global worst going to the last particle). It
consumes the same random stream in the documented order. After several iterations every particle's
weights must equal (to float tolerance) the coefficient rows applied to the experts.
"""

import numpy as np

from modelswarm.config import SwarmParams
from modelswarm.search.swarm import Swarm


def lin(ws, tensors):
    """sum_k ws[k] * tensors[k], key by key (the reference's lora_merge)."""
    return {key: sum(w * t[key] for w, t in zip(ws, tensors)) for key in tensors[0]}


class ReferenceSwarm:
    def __init__(self, experts, params: SwarmParams, seed: int):
        self.prm = params
        rng = self.rng = np.random.default_rng(seed)
        xs = [dict(e) for e in experts]
        while len(xs) < params.size:  # crossover
            a, b = rng.choice(len(xs), size=2, replace=False)
            w = rng.uniform(0.0, params.crossover_max_weight)
            xs.append(lin([w, 1 - w], [xs[a], xs[b]]))
        vs = []
        for i in range(len(xs)):  # random velocity: x_j - x_i
            j = rng.integers(len(xs) - 1)
            j += j >= i
            vs.append(lin([1, -1], [xs[j], xs[i]]))
        self.x, self.v = xs, vs
        self.step = params.step_length
        self.restarts = 0

    def start(self, scores):
        self.p = [dict(x) for x in self.x]
        self.ps = list(scores)
        self.hist = [[s] for s in scores]
        b, w = scores.index(max(scores)), scores.index(min(scores))
        self.g, self.gs = dict(self.x[b]), scores[b]
        self.gw, self.gws = dict(self.x[w]), scores[w]

    def iterate(self, score_fn):
        prm = self.prm
        stray = [len(h) - h.index(b) >= prm.restart_patience for h, b in zip(self.hist, self.ps)]
        r = self.rng.random((len(self.x), 4))
        for i in range(len(self.x)):
            if stray[i]:
                self.x[i] = dict(self.p[i])
                self.v[i] = lin([0.0], [self.x[i]])
                self.restarts += 1
            wv, wp, wg, ww = r[i] * [prm.phi_v, prm.phi_p, prm.phi_g, prm.phi_w]
            s = wv + wp + wg + ww
            p_x = lin([1, -1], [self.p[i], self.x[i]])
            g_x = lin([1, -1], [self.g, self.x[i]])
            x_w = lin([1, -1], [self.x[i], self.gw])
            self.v[i] = lin([wv / s, wp / s, wg / s, ww / s], [self.v[i], p_x, g_x, x_w])
            self.x[i] = lin([1, self.step], [self.x[i], self.v[i]])
        self.step = max(self.step * prm.step_decay, prm.step_min)
        scores = [score_fn(x) for x in self.x]
        for i, sc in enumerate(scores):
            self.hist[i].append(sc)
            if sc > self.ps[i]:
                self.p[i], self.ps[i] = dict(self.x[i]), sc
        if max(scores) > self.gs:
            self.gs = max(scores)
            self.g = dict(self.x[scores.index(self.gs)])
        if min(scores) < self.gws:
            self.gws = min(scores)
            for i in range(len(self.x)):
                if scores[i] == self.gws:
                    self.gw = dict(self.x[i])
        return scores


def test_coefficient_search_equals_weight_space_search():
    rng = np.random.default_rng(42)
    n = 4
    experts = [{"layer0.lora_A": rng.normal(size=(4, 16)), "layer0.lora_B": rng.normal(size=(16, 4)),
                "layer1.lora_A": rng.normal(size=(4, 16))} for _ in range(n)]
    target = {k: rng.normal(size=v.shape) for k, v in experts[0].items()}

    def utility(weights):  # any function of the weights: here closeness to a target
        return -sum(float(np.sum((weights[k] - target[k]) ** 2)) for k in weights)

    def weights_of(coeffs):
        return lin(list(coeffs), experts)

    params = SwarmParams(preset="paper", size=8, restart_patience=2)
    coef = Swarm.create(n, params, seed=3)
    ref = ReferenceSwarm(experts, params, seed=3)
    for i in range(8):
        assert all(np.allclose(weights_of(coef.x[i])[k], ref.x[i][k]) for k in target)

    scores = [utility(weights_of(c)) for c in coef.x]
    coef.start(np.array(scores))
    ref.start(scores)
    for _ in range(8):
        x = coef.propose()
        coef.record(np.array([utility(weights_of(c)) for c in x]))
        ref.iterate(utility)
        for i in range(8):
            w = weights_of(coef.x[i])
            for k in target:
                np.testing.assert_allclose(w[k], ref.x[i][k], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(coef.p_scores, ref.ps, rtol=1e-9)
    assert coef.restarts.sum() == ref.restarts > 0, "the run should exercise restarts too"
    for k in target:
        np.testing.assert_allclose(weights_of(coef.g)[k], ref.g[k], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(weights_of(coef.gw)[k], ref.gw[k], rtol=1e-9, atol=1e-9)
