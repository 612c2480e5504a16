"""Honest statistics for a compare over seeds: each method's test difference to model_swarms
with a bootstrap interval, the winner's validation-to-test gap, and how many seeds collapsed.

Pure functions over what the runner already loaded (compare rows, per-example test marks,
final populations); numpy only, so the table reads the same numbers from compare.json.

Test difference. For each seed pair (a method's row and model_swarms' row of the same seed;
a method that runs once, like best_expert, is paired with every model_swarms seed), d is
the per-example difference of their test marks: paired, the same example for both. The
estimate is the mean over pairs of mean(d), which is the difference of the test scores
where the score is the mean of its marks (every utility but abstain_qa's effective
reliability and multitask's combine; where the marks are not 0/1 with the row's test score
as their mean, there is no difference: "–"). The interval: RESAMPLES times, draw the pairs
with replacement and one resample of the test examples, shared by the drawn pairs (every
seed is scored on the same test set, so its examples' noise is shared too), and take the
same mean; the 2.5th and 97.5th percentiles. The generator is seeded (BOOTSTRAP_SEED), the
same for every method, so the table is deterministic.

Collapse. A run ended collapsed on a plateau when its final population's validation scores
(two or more) lie within one example of each other (max - min <= 1/n_val): every particle
scores the same, so the search had stopped exploring. "One example" is 1/n_val only where
the score is the mean of 0/1 marks (as above); for other utilities there is no count. The final population is
  a swarm's particles after its last iteration: their current scores (state.json; a
      particle not scored that iteration keeps its previous score, as the swarm does; with
      utility.early_exit a hopeless particle's score is an upper bound, as the swarm saw it);
  cma_es's last full generation (popsize points, from the row's curve);
and there is none for lorahub, bo and random_search: they ask `workers` points (or the
whole budget) at once to keep the pool busy, which is no population; nor for fixed points
and merge grids. Those report "–" (None).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

REFERENCE = "model_swarms"
RESAMPLES = 10_000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
GATHER = 2_000_000  # per-example draws held at once: resamples are taken in chunks this large

Marks = Mapping[tuple[str, int], Optional[Sequence[float]]]  # (method, seed) -> test marks


def _rows(rows: Sequence[Mapping[str, Any]], method: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["method"] == method]


def seed_pairs(rows: Sequence[Mapping[str, Any]], marks: Marks, method: str,
               reference: str = REFERENCE) -> list[tuple[Sequence[float], Sequence[float]]]:
    """(method's marks, reference's marks) per seed, both present; a method with one row
    (not seeded) pairs that row with every reference seed."""
    mine = _rows(rows, method)
    ref = {r["seed"]: marks.get((reference, r["seed"])) for r in _rows(rows, reference)}
    if len(mine) == 1 and not mine[0].get("seeded", True):
        own = marks.get((method, mine[0]["seed"]))
        pairs = [(own, m) for m in ref.values()]
    else:
        pairs = [(marks.get((method, r["seed"])), ref.get(r["seed"])) for r in mine]
    return [(a, b) for a, b in pairs if a is not None and b is not None]


def bootstrap_difference(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], resamples: int = RESAMPLES,
                         confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED) -> Optional[dict[str, Any]]:
    """Mean of (a - b) over pairs and examples, with its percentile interval when pairs
    (seeds) and the examples (one draw shared by the pairs: the same test set) are
    resampled; None without pairs or when the pairs do not mark the same number of examples."""
    if not pairs or len({len(a) for a, _ in pairs} | {len(b) for _, b in pairs}) != 1:
        return None
    d = np.array([np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b in pairs])
    if d.shape[1] == 0 or not np.isfinite(d).all():
        return None
    s, n = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, GATHER // (s * n))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        seeds = rng.integers(0, s, size=(k, s, 1))
        examples = rng.integers(0, n, size=(k, 1, n))
        means[start:start + k] = d[seeds, examples].mean(axis=(1, 2))
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return {"mean": round(float(d.mean()), 6), "lo": round(float(lo), 6), "hi": round(float(hi), 6),
            "pairs": s, "examples": n}


def collapsed(scores: Optional[Sequence[Optional[float]]], n_val: int) -> Optional[bool]:
    """Whether a final population sits on one plateau: its finite validation scores span at
    most one example (1/n_val). None when there is no population or fewer than two finite scores."""
    if scores is None or n_val < 1:
        return None
    v = np.array([x for x in scores if x is not None and math.isfinite(x)], dtype=float)
    if len(v) < 2:
        return None
    return bool(v.max() - v.min() <= 1.0 / n_val + 1e-12)  # the epsilon: k/n - (k-1)/n in floats


def final_population(row: Mapping[str, Any], swarm_scores: Optional[Sequence[Optional[float]]] = None
                     ) -> Optional[list[Optional[float]]]:
    """The validation scores a run ended with (see the module's docstring): a swarm's from
    swarm_scores, cma_es's last full generation from its curve; None for other methods."""
    if row["kind"] == "swarm":
        return None if swarm_scores is None else list(swarm_scores)
    if row["method"] == "cma_es":
        info, curve = row.get("info") or {}, row.get("curve") or []
        pop, gens = info.get("popsize"), info.get("generations")
        if not pop or not gens or len(curve) < pop * gens:
            return None
        return list(curve[(gens - 1) * pop:gens * pop])
    return None


def collapse_count(rows: Sequence[Mapping[str, Any]], method: str,
                   swarm_scores: Mapping[tuple[str, int], Optional[Sequence[Optional[float]]]],
                   n_val: int) -> Optional[dict[str, int]]:
    """{"collapsed": k, "of": n}: of the method's n seeds with a final population, k
    collapsed; None when none of its rows has one."""
    flags = [collapsed(final_population(r, swarm_scores.get((method, r["seed"]))), n_val)
             for r in _rows(rows, method)]
    known = [f for f in flags if f is not None]
    return {"collapsed": sum(known), "of": len(known)} if known else None


def winner_gap(result: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The winner's validation minus test score: of the means over seeds, and per seed."""
    winner = result.get("winner")
    if not winner:
        return None
    name = winner["method"]
    s = result["summary"][name]
    mean = None
    if s["val"]["mean"] is not None and s["test"]["mean"] is not None:
        mean = round(s["val"]["mean"] - s["test"]["mean"], 6)
    per_seed = {str(r["seed"]): (None if r.get("val") is None or r.get("test") is None
                                 else round(r["val"] - r["test"], 6))
                for r in _rows(result["rows"], name)}
    return {"method": name, "mean": mean, "seeds": per_seed}


def scores_are_mark_means(rows: Sequence[Mapping[str, Any]], marks: Marks) -> bool:
    """Whether every row's test marks are 0/1 and its test score is their mean: then a
    difference of marks is a difference of scores, and one example is 1/n of a score."""
    found = [(r, marks.get((r["method"], r["seed"]))) for r in rows]
    found = [(r, m) for r, m in found if m is not None]
    return bool(found) and all(
        set(m) <= {0.0, 1.0} and r.get("test") is not None and abs(float(np.mean(m)) - r["test"]) < 1e-9
        for r, m in found)


def compare_stats(result: Mapping[str, Any], marks: Marks,
                  swarm_scores: Mapping[tuple[str, int], Optional[Sequence[Optional[float]]]], n_val: int,
                  resamples: int = RESAMPLES) -> dict[str, Any]:
    """compare.json's "stats": per method, the test difference to model_swarms (None for
    model_swarms itself and where marks are missing) and the collapse count; the winner's gap.
    Both only where the scores are means of 0/1 marks (scores_are_mark_means)."""
    rows, methods = result["rows"], result["methods"]
    if not scores_are_mark_means(rows, marks):
        marks, n_val = {}, 0
    has_reference = REFERENCE in methods
    per_method = {}
    for name in methods:
        delta = None
        if has_reference and name != REFERENCE:
            delta = bootstrap_difference(seed_pairs(rows, marks, name), resamples=resamples)
        per_method[name] = {"test_delta": delta, "collapse": collapse_count(rows, name, swarm_scores, n_val)}
    return {"reference": REFERENCE if has_reference else None, "resamples": resamples, "confidence": CONFIDENCE,
            "bootstrap_seed": BOOTSTRAP_SEED, "collapse_within": None if n_val < 1 else round(1.0 / n_val, 6),
            "methods": per_method, "winner_gap": winner_gap(result)}
