"""The end of a run in numbers: what the official code reports (search.py, overall_metrics.py),
computed once from what the coordinator holds in memory: the swarm, its starting points,
and the evaluations cache (the journal replayed, plus this session's evaluations).

Typed records, built by keyword; summary.py turns them into summary.json, render.py into
the printed tables, plot.py into utility.png. Nothing here writes or names anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import analysis
from .baselines import Baselines, score_baselines, zero_is_base
from .state import Evaluation
from .swarm import Swarm


@dataclass(frozen=True, kw_only=True)
class ScoredParticle:
    """A particle's point (a personal best, or the best starting point) scored on validation
    and test."""

    particle: int
    val: Evaluation
    test: Optional[Evaluation] = None


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


@dataclass(frozen=True, kw_only=True)
class Counts:
    computed: int
    replayed: int
    hits: int


@dataclass(frozen=True, kw_only=True)
class Outcomes:
    baselines: Baselines
    personal_bests: tuple[ScoredParticle, ...]
    ensemble: Ensemble
    emergence: Optional[Emergence]  # None: the utility gives no per-question 0/1 marks
    starting_best: ScoredParticle  # the starting particle (crossover children included) best on validation
    starting_ensemble: Ensemble  # the starting swarm's top-k, chosen on its starting utility
    history_stats: dict[str, Optional[int]]
    diamond: dict[str, int]
    search: tuple[Evaluation, ...]  # the search's validation evaluations (iteration set)
    counts: Counts  # after every evaluation above


def compute_outcomes(prep, swarm: Swarm, evals) -> Outcomes:
    """Score the baselines and the personal bests (validation and test), vote the ensemble,
    trace correctness emergence, score the starting swarm on test and vote its ensemble.
    Scoring order is fixed, so the cache counts are too."""
    splits = ["val"] + (["test"] if "test" in prep.splits else [])
    baselines = score_baselines(prep, evals, best=swarm.g)
    scored = {split: evals.score(swarm.p, split) for split in splits}
    bests = tuple(ScoredParticle(particle=i, val=scored["val"][i], test=scored["test"][i] if "test" in scored else None)
                  for i in range(swarm.size))
    ensemble = vote(prep, scored, swarm.p_scores, prep.config.swarm.ensemble_top_k)
    search = tuple(ev for ev in evals.cache.values() if ev.split == "val" and ev.iteration is not None)
    start = initial_points(prep, swarm)
    initial = {"val": evals.score(start)}
    marked = emergence(swarm, initial["val"], evals, search)
    if "test" in splits:
        initial["test"] = evals.score(start, "test")
    first = int(np.nanargmax(swarm.initial_scores))  # official: the first of ties
    tests = initial.get("test")
    return Outcomes(
        baselines=baselines, personal_bests=bests, ensemble=ensemble, emergence=marked,
        starting_best=ScoredParticle(particle=first, val=initial["val"][first], test=tests[first] if tests else None),
        starting_ensemble=vote(prep, initial, swarm.initial_scores, prep.config.swarm.ensemble_top_k),
        history_stats=analysis.history_stats(swarm.history),
        diamond=analysis.diamond_in_the_rough(swarm.initial_scores, swarm.p_scores, swarm.g_score),
        search=search, counts=Counts(computed=evals.computed, replayed=evals.replayed, hits=evals.hits),
    )


def initial_points(prep, swarm: Swarm) -> np.ndarray:
    """The swarm's starting positions; a snapshot from before they were kept rebuilds them
    from the seed, as Swarm.create draws them first."""
    if swarm.initial_x is not None:
        return swarm.initial_x
    config = prep.config
    return Swarm.create(len(prep.bank.names), config.swarm, config.seed, base_point=zero_is_base(prep.bank.layout)).x


def vote(prep, scored: dict[str, Sequence[Evaluation]], utilities: Sequence[float], k: int) -> Ensemble:
    """The official top-k ensemble: members by validation utility among the particles scored
    on every split, answers (or marks) voted per question."""
    ok = [i for i in range(len(utilities)) if np.isfinite(utilities[i])
          and all(not evs[i].failed and votes_of(evs[i]) is not None for evs in scored.values())]
    picked = analysis.ensemble_members([utilities[i] for i in ok], k) if ok else []
    members = tuple(ok[j] for j in picked)
    accuracy: dict[str, float] = {}
    for split, evs in scored.items() if members else ():
        golds = [ex["answer"] for ex in prep.splits[split]] if evs[members[0]].answers else None
        accuracy[split] = round(analysis.ensemble_accuracy([votes_of(evs[i]) for i in members], golds), 6)
    return Ensemble(members=members, **accuracy)


def votes_of(ev: Evaluation) -> Optional[list[Any]]:
    """An evaluation's answers to vote on: its answers where the utility gives them, else its marks."""
    return ev.answers if ev.answers is not None else ev.per_example


def emergence(swarm: Swarm, initial: Sequence[Evaluation], evals, search: Sequence[Evaluation]) -> Optional[Emergence]:
    marks = [e.per_example for e in initial]
    if not all(m is not None and set(m) <= {0.0, 1.0} for m in marks):  # 0/1 marks, not per-example scores
        return None
    best = evals.score(swarm.g[None, :])[0].per_example
    later = [(ev.iteration, ev.per_example) for ev in search if ev.per_example is not None]
    d = analysis.correctness_emergence(marks, best, later, swarm.iteration)
    return Emergence(questions=d["questions"], unsolved_at_start=d["unsolved_at_start"],
                     solved_by_global_best=d.get("solved_by_global_best"),
                     solved_by_any_particle_by_iteration=tuple(d["solved_by_any_particle_by_iteration"]))
