"""The printed end of a run: the summary table and its notes, and the baselines table.

Renders summary.json's content (or a Baselines record) for the terminal; computes nothing.
"""

from __future__ import annotations

from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from ..report.baselines import Baselines


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
        # the official pick: the last particle whose personal best ties the global best, which is
        # not always the one whose position best/ holds (the first to reach it)
        console.print(f"global best improved {stats['improvements']} times{when}; its score is particle "
                      f"{diamond['particle']}'s personal best (the last of ties), ranked {diamond['starting_rank']} of "
                      f"{diamond['swarm_size']} at the start")
    ens = summary.get("ensemble", {})
    if "val" in ens:
        test = f", test {ens['test']:.4f}" if "test" in ens else ""
        console.print(f"top-{len(ens['members'])} ensemble of the personal bests (majority vote): "
                      f"validation {ens['val']:.4f}{test}")
    start, sens = summary.get("starting_best"), summary.get("starting_ensemble", {})
    if start:
        test = f", test {start['test']:.4f}" if start.get("test") is not None else ""
        ens = (f"; its top-{len(sens['members'])} ensemble: validation {sens['val']:.4f}"
               + (f", test {sens['test']:.4f}" if "test" in sens else "")) if "val" in sens else ""
        console.print(f"starting swarm: best particle {start['particle']}, validation {start['val']:.4f}{test}{ens}")
    ce = summary.get("correctness_emergence")
    if ce and "solved_by_global_best" in ce:
        console.print(f"validation questions no initial particle answers: {ce['unsolved_at_start']}; "
                      f"the global best answers {ce['solved_by_global_best']}, some particle "
                      f"{ce['solved_by_any_particle_by_iteration'][-1] if ce['solved_by_any_particle_by_iteration'] else 0}")
    console.print(f"best/ written to {summary['best_dir']}")


def print_baselines(b: Baselines, console: Optional[Console] = None) -> None:
    console = console or Console()
    t = Table(title="baselines")
    t.add_column("model")
    t.add_column("validation", justify="right")
    if b.has_test:
        t.add_column("test", justify="right")
    for r in b.rows:
        t.add_row(r.reference.label, f"{r.val.score:.4f}", *([f"{r.test.score:.4f}"] if b.has_test else []))
    console.print(t)
    console.print(f"best single expert (on validation): {b.best_expert}")
