"""End of a run: export best/, score the baselines, write summary.json, print the table.

Baselines are just coefficient rows: each expert (one-hot), the uniform soup (1/n each) and,
for LoRA experts, the base model (all zeros: A = B = 0). They are scored on the validation
split (the search objective) and, when the config has test_data, on the held-out test split.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.table import Table

from . import analysis
from .export import export_particle
from .io import atomic_write_json


def reference_points(bank) -> dict[str, np.ndarray]:
    n = len(bank.names)
    points = {f"expert {name}": row for name, row in zip(bank.names, np.eye(n))}
    points["uniform soup"] = np.full(n, 1.0 / n)
    if bank.layout.kind == "lora":
        points["base model"] = np.zeros(n)
    return points


def score_points(evals, points: dict[str, np.ndarray], iteration: int, split: str) -> dict[str, Any]:
    results = evals.score(np.stack(list(points.values())), iteration, split=split)
    return dict(zip(points, results))


def baseline_table(prep, evals, extra: Optional[dict[str, np.ndarray]] = None) -> dict[str, Any]:
    """{split: {name: score}} plus the best single expert (chosen on validation) and the share
    of test questions that no expert answers but the first of `extra` does."""
    points = dict(extra or {})
    points.update(reference_points(prep.bank))
    out: dict[str, Any] = {}
    val = score_points(evals, points, 0, "val")
    out["val"] = {k: _num(v.score) for k, v in val.items()}
    experts = [k for k in points if k.startswith("expert ")]
    best_expert = max(experts, key=lambda k: val[k].score)
    out["best_single_expert"] = best_expert.removeprefix("expert ")
    if "test" in prep.splits:
        test = score_points(evals, points, -1, "test")
        out["test"] = {k: _num(v.score) for k, v in test.items()}
        tasks = [ex.get("task") for ex in prep.splits["test"]]
        if all(tasks):
            out["test_by_task"] = {k: by_task(tasks, v.per_example) for k, v in test.items() if v.per_example}
        if extra:
            first = next(iter(extra))
            mats = [test[k].per_example for k in experts]
            mine = test[first].per_example
            if mine is not None and all(m is not None for m in mats):
                none_right = ~np.any(np.array(mats) > 0.5, axis=0)
                mine_right = np.array(mine) > 0.5
                out["test_solved_by_no_expert"] = float(np.mean(none_right & mine_right))
                out["test_solved_by_no_expert_count"] = int(np.sum(none_right & mine_right))
    return out


def by_task(tasks: list[str], correct: list[float]) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for t, c in zip(tasks, correct):
        acc.setdefault(t, []).append(c)
    return {t: round(sum(v) / len(v), 4) for t, v in sorted(acc.items())}


def _num(x: float) -> Optional[float]:
    return None if math.isinf(x) or math.isnan(x) else float(x)


def finish(prep, rd, swarm, evals, elapsed_s: float) -> dict[str, Any]:
    config, bank = prep.config, prep.bank
    with rd.writing(rd.best_dir):
        export_particle(rd.best_dir, bank, swarm.g, config.base_model, score=swarm.g_score,
                        extra={"run": config.name, "iterations": swarm.iteration, "utility": config.utility.kind})
    table = baseline_table(prep, evals, {"global best": swarm.g})
    summary = {
        "name": config.name,
        "status": "finished",
        "experts": list(bank.names),
        "kind": bank.layout.kind,
        "utility": config.utility.kind,
        "best": {"score": swarm.g_score, "coefficients": swarm.g.tolist()},
        "top_k": [{"score": s, "coefficients": c.tolist()} for s, c in swarm.top_k()],
        "iterations": swarm.iteration,
        "history": swarm.history,
        "history_stats": analysis.history_stats(swarm.history),
        "restarts": int(swarm.restarts.sum()),
        "diamond_in_the_rough": analysis.diamond_in_the_rough(swarm.initial_scores, swarm.p_scores, swarm.p, swarm.g),
        **personal_best_outcomes(prep, rd, swarm, evals),
        "evaluations": {"computed": evals.computed, "replayed_from_journal": evals.replayed, "cache_hits": evals.hits},
        "elapsed_s": round(elapsed_s, 2),
        "baselines": table,
        "best_dir": str(rd.best_dir),
    }
    with rd.writing(rd.summary_file):
        atomic_write_json(rd.summary_file, summary)
    from .plot import plot_run

    with rd.writing(rd.path / "utility.png"):
        plot_run(rd.path)
    return summary


def personal_best_outcomes(prep, rd, swarm, evals) -> dict[str, Any]:
    """What the official code scores at the end: every personal best on validation and test,
    the top-k majority-vote ensemble of the personal bests, and correctness emergence."""
    from .swarm import Swarm

    config = prep.config
    splits = ["val"] + (["test"] if "test" in prep.splits else [])
    scored = {split: evals.score(swarm.p, 0 if split == "val" else -1, split=split) for split in splits}
    members = analysis.ensemble_members(list(swarm.p_scores), config.swarm.ensemble_top_k)
    ensemble: dict[str, Any] = {"members": members}
    for split in splits:
        votes = [_votes(scored[split][i]) for i in members]
        if all(v is not None for v in votes):
            golds = [ex["answer"] for ex in prep.splits[split]] if scored[split][members[0]].answers else None
            ensemble[split] = round(analysis.ensemble_accuracy(votes, golds), 6)
    out: dict[str, Any] = {
        "personal_bests": [{"particle": i, **{s: _num(scored[s][i].score) for s in splits}}
                           for i in range(swarm.size)],
        "ensemble": ensemble,
    }
    initial = evals.score(Swarm.create(len(prep.bank.names), config.swarm, config.seed).x, 0)
    marks = [e.per_example for e in initial]
    if all(m is not None for m in marks):
        best = evals.score(swarm.g[None, :], 0)[0].per_example
        later = [(ev.iteration, ev.per_example) for ev in rd.read_journal()
                 if 1 <= ev.iteration <= swarm.iteration and ev.per_example is not None]
        out["correctness_emergence"] = analysis.correctness_emergence(marks, best, later, swarm.iteration)
    return out


def _votes(ev) -> Optional[list]:
    """An evaluation's answers to vote on: its answers where the utility gives them, else its marks."""
    return ev.answers if ev.answers is not None else ev.per_example


def print_summary(summary: dict[str, Any], console: Optional[Console] = None) -> None:
    console = console or Console()
    b = summary["baselines"]
    table = Table(title=f"{summary['name']}: {summary['iterations']} iterations, "
                        f"{summary['evaluations']['computed']} evaluations, {summary['elapsed_s']:.0f}s")
    table.add_column("model")
    table.add_column("validation", justify="right")
    if "test" in b:
        table.add_column("test", justify="right")
    fmt = lambda v: "failed" if v is None else f"{v:.4f}"  # noqa: E731
    for name, v in b["val"].items():
        row = [name + (" (best single)" if name == f"expert {b['best_single_expert']}" else ""), fmt(v)]
        if "test" in b:
            row.append(fmt(b["test"][name]))
        table.add_row(*row, style="bold green" if name == "global best" else None)
    console.print(table)
    if "test_by_task" in b and "global best" in b["test_by_task"]:
        best_single = f"expert {b['best_single_expert']}"
        cols = ["global best", best_single, "uniform soup"]
        t = Table(title="test accuracy by task")
        t.add_column("task")
        for c in cols:
            t.add_column(c, justify="right")
        for task in b["test_by_task"]["global best"]:
            t.add_row(task, *[f"{b['test_by_task'][c][task]:.3f}" if c in b["test_by_task"] else "-" for c in cols])
        console.print(t)
    if "test_solved_by_no_expert" in b:
        console.print(f"test questions no initial expert answers but the composed expert does: "
                      f"{b['test_solved_by_no_expert_count']} ({100 * b['test_solved_by_no_expert']:.1f}%)")
    stats, diamond = summary.get("history_stats"), summary.get("diamond_in_the_rough")
    if stats and diamond:
        console.print(f"global best improved {stats['improvements']} times (last at iteration {stats['last_change']}); "
                      f"it is particle {diamond['particle']}, ranked {diamond['starting_rank']} of "
                      f"{diamond['swarm_size']} at the start")
    ens = summary.get("ensemble", {})
    if "val" in ens:
        test = f", test {ens['test']:.4f}" if "test" in ens else ""
        console.print(f"top-{len(ens['members'])} ensemble of the personal bests (majority vote): "
                      f"validation {ens['val']:.4f}{test}")
    ce = summary.get("correctness_emergence")
    if ce and "solved_by_global_best" in ce:
        console.print(f"validation questions no initial particle answers: {ce['unsolved_at_start']}; "
                      f"the global best answers {ce['solved_by_global_best']}, some particle "
                      f"{ce['solved_by_any_particle_by_iteration'][-1] if ce['solved_by_any_particle_by_iteration'] else 0}")
    console.print(f"best/ written to {summary['best_dir']}")
