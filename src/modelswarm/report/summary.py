"""summary.json: a pure function of the run's end in memory (the swarm and its Outcomes).

The labels ("expert NAME", "global best", "uniform soup", "base model") are made here, as
the README documents the file; readers of an old summary.json find the same keys.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .analysis import Ensemble
from .baselines import Baselines
from .outcomes import Outcomes
from ..search.swarm import Swarm


def build_summary(prep, swarm: Swarm, outcomes: Outcomes, elapsed_s: float, best_dir: str) -> dict[str, Any]:
    config, bank = prep.config, prep.bank
    table = baseline_table(outcomes.baselines)
    return {
        "name": config.name,
        "status": "finished",
        "experts": list(bank.names),
        "kind": bank.layout.kind,
        "utility": config.utility.kind,
        "best": {"score": swarm.g_score, "coefficients": swarm.g.tolist(),
                 **({"parts": table["parts"]["val"]["global best"]} if "parts" in table else {})},
        "top_k": [{"score": json_number(s), "coefficients": c.tolist()} for s, c in swarm.top_k()],
        "iterations": swarm.iteration,
        "history": swarm.history,
        "history_stats": outcomes.history_stats,
        "restarts": int(swarm.restarts.sum()),
        "trace": swarm.trace,
        "diamond_in_the_rough": outcomes.diamond,
        **personal_best_outcomes(outcomes),
        "evaluations": {"computed": outcomes.counts.computed, "replayed_from_journal": outcomes.counts.replayed,
                        "cache_hits": outcomes.counts.hits},
        "elapsed_s": round(elapsed_s, 2),
        "baselines": table,
        "best_dir": best_dir,
    }


def baseline_table(b: Baselines) -> dict[str, Any]:
    """{split: {label: score}}, each part's score (multitask), the best single expert, test
    accuracy by task and the questions no expert answers but the global best does."""
    out: dict[str, Any] = {"val": {r.reference.label: json_number(r.val.score) for r in b.rows}}
    if any(r.val.parts for r in b.rows):
        out["parts"] = {"val": {r.reference.label: r.val.parts for r in b.rows}}
    out["best_single_expert"] = b.best_expert
    if b.has_test:
        out["test"] = {r.reference.label: json_number(r.test.score) for r in b.rows}
        if "parts" in out:
            out["parts"]["test"] = {r.reference.label: r.test.parts for r in b.rows}
        if b.test_tasks is not None:
            out["test_by_task"] = {r.reference.label: by_task(list(b.test_tasks), r.test.per_example)
                                   for r in b.rows if r.test.per_example}
        if b.solved_by_no_expert is not None:
            out["test_solved_by_no_expert"] = b.solved_by_no_expert / b.test_questions
            out["test_solved_by_no_expert_count"] = b.solved_by_no_expert
    return out


def personal_best_outcomes(o: Outcomes) -> dict[str, Any]:
    """personal_bests, ensemble, correctness_emergence (where the utility gives 0/1 marks), and
    the starting swarm's best particle and top-k ensemble."""
    def scores(pb) -> dict[str, Optional[float]]:
        return {"val": json_number(pb.val.score), **({"test": json_number(pb.test.score)} if pb.test else {})}

    def parts(pb) -> dict[str, Any]:
        if not pb.val.parts:
            return {}
        return {"parts": {"val": pb.val.parts, **({"test": pb.test.parts} if pb.test else {})}}

    out: dict[str, Any] = {
        "personal_bests": [{"particle": pb.particle, **scores(pb), **parts(pb)} for pb in o.personal_bests],
        "ensemble": ensemble(o.ensemble),
    }
    if o.emergence is not None:
        e = o.emergence
        out["correctness_emergence"] = {
            "questions": e.questions, "unsolved_at_start": e.unsolved_at_start,
            **({"solved_by_global_best": e.solved_by_global_best} if e.solved_by_global_best is not None else {}),
            "solved_by_any_particle_by_iteration": list(e.solved_by_any_particle_by_iteration),
        }
    out["starting_best"] = {"particle": o.starting_best.particle, **scores(o.starting_best)}
    out["starting_ensemble"] = ensemble(o.starting_ensemble)
    return out


def ensemble(e: Ensemble) -> dict[str, Any]:
    return {"members": list(e.members), **{s: v for s, v in (("val", e.val), ("test", e.test)) if v is not None}}


def recorded_best(summary: dict[str, Any]) -> dict[str, float]:
    """A finished run's global best score on each split it was scored on, from summary.json."""
    out = {"val": summary["best"]["score"]}
    if "test" in summary["baselines"]:
        out["test"] = summary["baselines"]["test"]["global best"]
    return out


def by_task(tasks: list[str], correct: list[float]) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for t, c in zip(tasks, correct):
        acc.setdefault(t, []).append(c)
    return {t: round(sum(v) / len(v), 4) for t, v in sorted(acc.items())}


def json_number(x: float) -> Optional[float]:
    """A score for JSON: a failed (nan) or infinite one is null."""
    return None if math.isinf(x) or math.isnan(x) else float(x)
