"""End-of-run analyses that the official code reports (overall_metrics.py, search.py).

Pure functions of scores, per-example marks and finished evaluations: the top-k
majority-vote ensemble of the personal bests, the global-best history statistics, the
"diamond in the rough" ranks and correctness emergence. outcomes.py feeds them what the run
scored; summary.py writes what they return to summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Ensemble:
    """The top-k majority vote of some particles: members chosen on validation utility."""

    members: tuple[int, ...]
    val: Optional[float] = None  # None: the members' evaluations give nothing to vote on
    test: Optional[float] = None


@dataclass(frozen=True, kw_only=True)
class Emergence:
    """Validation questions that no starting particle answers, and how many become right."""

    questions: int
    unsolved_at_start: int
    solved_by_global_best: Optional[int]
    solved_by_any_particle_by_iteration: tuple[int, ...]


def zero_one(marks: Sequence[Optional[Sequence[float]]]) -> bool:
    """Whether every evaluation gave per-question 0/1 marks (not per-example scores)."""
    return all(m is not None and set(m) <= {0.0, 1.0} for m in marks)


def votes_of(ev: Any) -> Optional[list[Any]]:
    """An evaluation's answers to vote on: its answers where the utility gives them, else its marks."""
    return ev.answers if ev.answers is not None else ev.per_example


def vote(scored: Mapping[str, Sequence[Any]], utilities: Sequence[float], k: int,
         examples: Mapping[str, Sequence[dict[str, Any]]]) -> Ensemble:
    """The official top-k ensemble: members by validation utility among the particles scored
    on every split (scored: split -> each particle's evaluation), answers (or marks) voted per
    question; an answer is right when it is its example's "answer"."""
    ok = [i for i in range(len(utilities)) if np.isfinite(utilities[i])
          and all(not evs[i].failed and votes_of(evs[i]) is not None for evs in scored.values())]
    picked = ensemble_members([utilities[i] for i in ok], k) if ok else []
    members = tuple(ok[j] for j in picked)
    accuracy: dict[str, float] = {}
    for split, evs in scored.items() if members else ():
        golds = [ex["answer"] for ex in examples[split]] if evs[members[0]].answers else None
        accuracy[split] = round(ensemble_accuracy([votes_of(evs[i]) for i in members], golds), 6)
    return Ensemble(members=members, **accuracy)


def emergence(initial_marks: Sequence[Sequence[float]], best_marks: Optional[Sequence[float]],
              search: Sequence[Any], iterations: int) -> Emergence:
    """correctness_emergence as a record; search: the search's validation evaluations."""
    later = [(ev.iteration, ev.per_example) for ev in search if ev.per_example is not None]
    d = correctness_emergence(initial_marks, best_marks, later, iterations)
    return Emergence(questions=d["questions"], unsolved_at_start=d["unsolved_at_start"],
                     solved_by_global_best=d.get("solved_by_global_best"),
                     solved_by_any_particle_by_iteration=tuple(d["solved_by_any_particle_by_iteration"]))


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
