"""The commands that start a pool: run, resume, demo, baselines, compare. Each is one call
from app.py; an interruption becomes Interrupted, with the line that says how to go on."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from ..report.baselines import Baselines, score_baselines
from ..config import load_config
from ..run.coordinator import run_swarm
from ..errors import UserError
from ..search.evaluations import Evaluations, start_pool
from ..run.prepare import Prepared, prepare
from ..run.progress import Progress
from .render import print_baselines, print_summary
from ..search.state import RunDir


class Interrupted(Exception):
    """Ctrl-C: what is saved, and the command that continues."""


def search(prep: Prepared, address: Optional[str], resume: bool, live: Optional[bool],
           console: Console) -> dict[str, Any]:
    """Run or resume the search; print the summary."""
    try:
        summary = run_swarm(prep, address=address, resume=resume, live=live)
    except KeyboardInterrupt:
        raise Interrupted(f"\ninterrupted; state is saved. Resume with:\n  modelswarm resume {prep.config.run_dir}")
    print_summary(summary, console)
    return summary


def run_command(config: Path, overrides: dict, address: Optional[str], resume: bool, live: Optional[bool],
                console: Console) -> dict[str, Any]:
    """`modelswarm run`: --resume continues the run directory only where it exists."""
    cfg = load_config(config, overrides)
    prep = prepare(cfg, config)
    return search(prep, address, resume and RunDir(cfg.run_dir).exists(), live, console)


def resume_command(run_dir: Path, address: Optional[str], live: Optional[bool], console: Console) -> dict[str, Any]:
    rd = RunDir(run_dir)
    cfg = rd.load_config().replace(runs_dir=str(rd.path.resolve().parent), name=rd.path.resolve().name)
    return search(prepare(cfg, rd.config_source()), address, True, live, console)


def demo_command(config: Path, name: Optional[str], address: Optional[str], live: Optional[bool],
                 console: Console) -> dict[str, Any]:
    from ..demo.run import prepare_demo

    return search(prepare_demo(config, name, log=lambda m: console.print(m, highlight=False)), address, False, live,
                  console)


def baselines_command(config: Path, address: Optional[str], console: Console) -> Baselines:
    """Each expert, the uniform soup and the base model scored; the table printed."""
    prep = prepare(load_config(config), config)
    with tempfile.TemporaryDirectory() as tmp:  # a throwaway journal: baselines are not a run
        evals = Evaluations(RunDir(tmp), lambda: start_pool(prep, address),
                            Progress(prep.bank.names, 0, live=False, console=Console(stderr=True)))
        try:
            table = score_baselines(prep, evals)
        finally:
            evals.shutdown()
    print_baselines(table, console)
    return table


def compare_command(config: Path, methods: Optional[list[str]], budget: Optional[int], seeds: int,
                    swarm_run: Optional[Path], out: Optional[Path], address: Optional[str],
                    console: Console) -> dict[str, Any]:
    from ..compare.runner import run_compare
    from ..compare.table import print_compare

    cfg = load_config(config)
    prep = prepare(cfg, config)
    if swarm_run is not None and not (swarm_run / "summary.json").is_file():
        raise UserError(swarm_run, "not a finished run (no summary.json)")
    try:
        result = run_compare(prep, methods, budget, seeds, out, address, swarm_run,
                             log=lambda m: console.print(m, highlight=False))
    except KeyboardInterrupt:
        raise Interrupted("\ninterrupted; finished evaluations are journaled. Run the same command again to resume.")
    print_compare(result, console)
    w = result["winner"]
    if w:
        console.print(f"winner on validation: {w['method']} (seed {w['seed']}); export it with "
                      f"`modelswarm export {out or Path(cfg.runs_dir) / (cfg.name + '-compare')}`")
    return result
