"""`modelswarm status RUN_DIR`: where a run stands, read from its state.json."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..run.progress import Progress
from ..search.state import RunDir
from ..search.swarm import Swarm


def show_status(run_dir: Path, plot: bool, console: Console) -> None:
    """The iteration table of the last snapshot, the status and the global best's coefficients;
    plot: also write RUN_DIR/utility.png from the journal."""
    rd = RunDir(run_dir)
    cfg = rd.load_config()
    if not rd.state_file.exists():
        console.print(f"{run_dir}: started, no iteration finished yet")
        return
    d = rd.read_json(rd.state_file)
    swarm = Swarm.from_json(d["swarm"], cfg.swarm)
    view = Progress(tuple(d.get("experts", [])), cfg.swarm.max_iterations, live=False, console=console)
    view.swarm = swarm
    view.status = d.get("status", "?")
    console.print(view.render())
    console.print(f"status: {d.get('status')}, elapsed {d.get('elapsed_s', 0):.0f}s, "
                  f"global best coefficients {[round(c, 4) for c in swarm.g.tolist()]}")
    if plot:
        from ..report.plot import plot_run

        console.print(f"wrote {plot_run(run_dir)}")
