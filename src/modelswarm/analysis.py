"""End-of-run analyses that the official code reports (overall_metrics.py, search.py).

Pure functions of scores and per-example marks: the top-k majority-vote ensemble of the
personal bests, the global-best history statistics, the "diamond in the rough" ranks and
correctness emergence. outcomes.py feeds them; summary.py writes what they return to summary.json.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np


def ensemble_members(utilities: Sequence[float], k: int) -> list[int]:
    """The official top-k: the k-th best utility is the bar, and particles at or above it
    are taken in index order until k are in (so ties at the bar go to the lower index)."""
    k = min(k, len(utilities))
    bar = sorted(utilities, reverse=True)[k - 1]
    return [i for i, u in enumerate(utilities) if u >= bar][:k]


def majority_vote(answers: Sequence[Sequence[Any]]) -> list[Any]:
    """Per example, the answer most members give; a tie goes to the tied answer met first
    in member order. The official code means to break ties by summed utility, but it sums
    the last member's utility for every answer (it reads the loop variable after the loop),
    which for positive utilities reduces to this rule."""
    out = []
    for column in zip(*answers):
        counts: dict[Any, int] = {}
        for a in column:
            counts[a] = counts.get(a, 0) + 1
        top = max(counts.values())
        out.append(next(a for a in counts if counts[a] == top))
    return out


def ensemble_accuracy(answers: Sequence[Sequence[Any]], golds: Optional[Sequence[Any]]) -> float:
    """Accuracy of the voted answers; with golds None the answers are 0/1 marks, voted as the
    official code does for exact_match, and the score is their mean."""
    voted = majority_vote(answers)
    if golds is None:
        return float(np.mean([float(v) for v in voted]))
    return float(np.mean([v == g for v, g in zip(voted, golds)]))


def history_stats(history: Sequence[float]) -> dict[str, Optional[int]]:
    """How often the global best improved, and the history index of its last change."""
    ups = [t + 1 for t in range(len(history) - 1) if history[t] < history[t + 1]]
    return {"improvements": len(ups), "last_change": ups[-1] if ups else None}


def rank(value: float, values: Sequence[float]) -> int:
    """1 = best; a failed (nan) score ranks below every real one."""
    clean = np.where(np.isnan(values), -np.inf, values)
    v = -np.inf if np.isnan(value) else value
    return int(1 + np.sum(clean > v))


def diamond_in_the_rough(initial_scores: np.ndarray, p_scores: np.ndarray, g_score: float) -> dict[str, int]:
    """The particle whose personal best scores the global best (the last one, as the official
    code picks) and its rank at the start and at the end of the search."""
    i = int(np.flatnonzero(p_scores == g_score)[-1])
    return {"particle": i, "starting_rank": rank(initial_scores[i], initial_scores),
            "ending_rank": rank(p_scores[i], p_scores), "swarm_size": len(p_scores)}


def correctness_emergence(initial_marks: Sequence[Sequence[float]], best_marks: Optional[Sequence[float]],
                          later: Sequence[tuple[int, Sequence[float]]], iterations: int) -> dict[str, Any]:
    """Validation questions that no initial particle answers, and how many of them become
    right: for the global best, and for any particle by each iteration (cumulative).

    initial_marks: the initial particles' 0/1 marks; later: (iteration, marks) of every
    evaluation made during the search."""
    unsolved = ~np.any(np.asarray(initial_marks) > 0.5, axis=0)
    n = int(unsolved.sum())
    out: dict[str, Any] = {"questions": int(unsolved.size), "unsolved_at_start": n}
    if best_marks is not None:
        out["solved_by_global_best"] = int(np.sum(unsolved & (np.asarray(best_marks) > 0.5)))
    solved = np.zeros_like(unsolved)
    curve = []
    by_iteration: dict[int, list[Sequence[float]]] = {}
    for it, marks in later:
        by_iteration.setdefault(it, []).append(marks)
    for t in range(1, iterations + 1):
        for marks in by_iteration.get(t, []):
            solved |= unsolved & (np.asarray(marks) > 0.5)
        curve.append(int(solved.sum()))
    out["solved_by_any_particle_by_iteration"] = curve
    return out
