"""End of a run: export best/, score the baselines and the personal bests, write
summary.json, print the table."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.table import Table

from . import analysis
from .baselines import baseline_table, json_number, zero_is_base
from .card import add_scores
from .export import export_particle
from .io import atomic_write_json


def finish(prep, rd, swarm, evals, elapsed_s: float) -> dict[str, Any]:
    config, bank = prep.config, prep.bank
    with rd.writing(rd.best_dir):
        export_particle(rd.best_dir, bank, swarm.g, config.base_model, score=swarm.g_score,
                        extra={"run": config.name, "iterations": swarm.iteration, "utility": config.utility.kind},
                        config=config)
    table = baseline_table(prep, evals, {"global best": swarm.g})
    with rd.writing(rd.best_dir):  # the test score, known only now, into the card
        add_scores(rd.best_dir, test=table.get("test", {}).get("global best"))
    summary = {
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
        "history_stats": analysis.history_stats(swarm.history),
        "restarts": int(swarm.restarts.sum()),
        "trace": swarm.trace,
        "diamond_in_the_rough": analysis.diamond_in_the_rough(swarm.initial_scores, swarm.p_scores, swarm.g_score),
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
    scored = {split: evals.score(swarm.p, split) for split in splits}
    # members among the particles whose personal bests were scored everywhere
    ok = [i for i in range(swarm.size) if np.isfinite(swarm.p_scores[i])
          and all(not scored[s][i].failed and _votes(scored[s][i]) is not None for s in splits)]
    picked = analysis.ensemble_members([swarm.p_scores[i] for i in ok], config.swarm.ensemble_top_k) if ok else []
    members = [ok[k] for k in picked]
    ensemble: dict[str, Any] = {"members": members}
    for split in splits if members else []:
        votes = [_votes(scored[split][i]) for i in members]
        golds = [ex["answer"] for ex in prep.splits[split]] if scored[split][members[0]].answers else None
        ensemble[split] = round(analysis.ensemble_accuracy(votes, golds), 6)
    out: dict[str, Any] = {
        "personal_bests": [{"particle": i, **{s: json_number(scored[s][i].score) for s in splits},
                            **({"parts": {s: scored[s][i].parts for s in splits}} if scored["val"][i].parts else {})}
                           for i in range(swarm.size)],
        "ensemble": ensemble,
    }
    initial = evals.score(Swarm.create(len(prep.bank.names), config.swarm, config.seed,
                                       base_point=zero_is_base(prep.bank.layout)).x)
    marks = [e.per_example for e in initial]
    if all(m is not None for m in marks):
        best = evals.score(swarm.g[None, :])[0].per_example
        later = [(ev.iteration, ev.per_example) for ev in rd.read_journal()
                 if ev.split == "val" and ev.iteration is not None and ev.per_example is not None]
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
    if "parts" in b:
        t = Table(title="score by part (multitask)")
        t.add_column("model")
        names = list(next(iter(b["parts"]["val"].values())) or {})
        for split in b["parts"]:
            for name in names:
                t.add_column(f"{name} ({split})", justify="right")
        for model in b["parts"]["val"]:
            t.add_row(model, *[f"{(b['parts'][s].get(model) or {}).get(n, float('nan')):.4f}"
                               for s in b["parts"] for n in names],
                      style="bold green" if model == "global best" else None)
        console.print(t)
    stats, diamond = summary.get("history_stats"), summary.get("diamond_in_the_rough")
    if stats and diamond:
        when = f" (last in iteration {stats['last_change']})" if stats["last_change"] is not None else ""
        console.print(f"global best improved {stats['improvements']} times{when}; it is particle "
                      f"{diamond['particle']}, ranked {diamond['starting_rank']} of {diamond['swarm_size']} at the start")
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
