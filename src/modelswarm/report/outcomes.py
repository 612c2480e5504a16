"""The end of a run in numbers: what the official code reports (search.py, overall_metrics.py),
computed once from what the coordinator holds in memory: the swarm, its starting points,
and the evaluations cache (the journal replayed, plus this session's evaluations).

    the starting points -> every point scored, in a fixed order (baselines.py, then the
    personal bests, the starting swarm, the global best) -> the analyses (analysis.py)

Typed records, built by keyword; summary.py turns them into summary.json, render.py into
the printed tables, plot.py into utility.png. Nothing here writes or names anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import analysis
from .analysis import Emergence, Ensemble
from .baselines import Baselines, score_baselines, zero_is_base
from ..search.state import Evaluation
from ..search.swarm import Swarm


@dataclass(frozen=True, kw_only=True)
class ScoredParticle:
    """A particle's point (a personal best, or the best starting point) scored on validation
    and test."""

    particle: int
    val: Evaluation
    test: Optional[Evaluation] = None


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
    """Score the baselines and the personal bests (validation and test), the starting swarm
    and, where the utility gives 0/1 marks, the global best for correctness emergence; then
    vote the ensembles and run the analyses. Scoring order is fixed, so the cache counts are
    too; the search's evaluations are the cached ones with an iteration (the end's own scoring
    finds them there, or adds evaluations without one)."""
    start = initial_points(prep, swarm)
    splits = ["val"] + (["test"] if "test" in prep.splits else [])
    baselines = score_baselines(prep, evals, best=swarm.g)
    scored = {split: evals.score(swarm.p, split) for split in splits}
    search = tuple(ev for ev in evals.cache.values() if ev.split == "val" and ev.iteration is not None)
    initial = {"val": evals.score(start)}
    marks = [e.per_example for e in initial["val"]]
    marked = analysis.zero_one(marks)
    best = evals.score(swarm.g[None, :])[0].per_example if marked else None
    if "test" in splits:
        initial["test"] = evals.score(start, "test")
    first = int(np.nanargmax(swarm.initial_scores))  # official: the first of ties
    tests, k = initial.get("test"), prep.config.swarm.ensemble_top_k
    return Outcomes(
        baselines=baselines,
        personal_bests=tuple(ScoredParticle(particle=i, val=scored["val"][i], test=scored["test"][i] if "test" in scored else None)
                             for i in range(swarm.size)),
        ensemble=analysis.vote(scored, swarm.p_scores, k, prep.splits),
        emergence=analysis.emergence(marks, best, search, swarm.iteration) if marked else None,
        starting_best=ScoredParticle(particle=first, val=initial["val"][first], test=tests[first] if tests else None),
        starting_ensemble=analysis.vote(initial, swarm.initial_scores, k, prep.splits),
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
