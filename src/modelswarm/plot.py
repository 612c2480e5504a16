"""utility.png: the global best and every particle's score per iteration."""

from __future__ import annotations

import math
from pathlib import Path

from .io import atomic_write
from .state import RunDir


def plot_run(run_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rd = RunDir(run_dir)
    evals = [e for e in rd.read_journal() if e.split == "val" and e.iteration is not None]
    state = rd.read_json(rd.state_file) if rd.state_file.exists() else {"swarm": {"history": []}}
    history = state["swarm"]["history"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
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
    ax.set_xlabel("iteration")
    ax.set_ylabel("utility (validation)")
    ax.set_title(f"{rd.path.name}: Model Swarms search")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    out = rd.path / "utility.png"
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return out
