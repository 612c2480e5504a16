"""utility.png: the global best and every particle's score per iteration and, under it, the
swarm's spread, distance to the global best and step length (the trace, diagnostics.py).

plot_swarm draws what it is given: at the end of a run, the search's evaluations in memory
(the cache: every session's, failures not kept); plot_run, for `modelswarm status --plot`,
reads them from the run directory, where the journal keeps the failures too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from ..io import atomic_write
from ..search.state import Evaluation, RunDir


def plot_run(run_dir: Path) -> Path:
    rd = RunDir(run_dir)
    evals = [e for e in rd.read_journal() if e.split == "val" and e.iteration is not None]
    state = rd.read_json(rd.state_file) if rd.state_file.exists() else {"swarm": {"history": []}}
    return plot_swarm(rd.path / "utility.png", rd.path.name, evals, state["swarm"]["history"],
                      state["swarm"].get("trace", []))


def plot_swarm(out: Path, name: str, evals: Sequence[Evaluation], history: Sequence[float],
               trace: Sequence[dict]) -> Path:
    """evals: the search's validation evaluations (each with its iteration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, low_ax) = plt.subplots(2, 1, figsize=(8, 6.5), dpi=110, sharex=True,
                                     gridspec_kw={"height_ratios": [3, 2]})
    finite = [e for e in evals if not e.failed and math.isfinite(e.score)]
    ax.scatter([e.iteration for e in finite], [e.score for e in finite], s=10, alpha=0.45,
               color="tab:blue", label="particle evaluations")
    failed = [e for e in evals if e.failed]
    if failed:
        low = min((e.score for e in finite), default=0.0)
        ax.scatter([e.iteration for e in failed], [low] * len(failed), marker="x", color="tab:red",
                   label="failed (not evaluated)")
    if history:
        ax.step(range(len(history)), history, where="post", color="tab:green", linewidth=2, label="global best")
    ax.set_ylabel("utility (validation)")
    ax.set_title(f"{name}: Model Swarms search")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if trace:
        its = [t["iteration"] for t in trace]
        for key, label in (("spread", "spread (mean distance between particles)"),
                           ("to_best", "mean distance to the global best"), ("step_mean", "mean step")):
            low_ax.plot(its, [t[key] for t in trace], marker=".", label=label)
        improved = low_ax.twinx()
        improved.bar(its, [t["improved"] for t in trace], alpha=0.2, color="tab:gray")
        improved.set_ylabel("personal bests improved (bars)")
        low_ax.legend(loc="upper right", fontsize=8)
    low_ax.set_ylabel("coefficient space")
    low_ax.set_xlabel("iteration")
    low_ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return out
