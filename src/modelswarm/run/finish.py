"""End of a run, steps each taken once, in this order:

    best/ exported with its card (export/particle.py) -> the outcomes scored and analysed
    (report/outcomes.py) -> summary.json's content (report/summary.py) -> the test score,
    known only now, into best/'s card -> summary.json and utility.png written

The coordinator calls finish; everything after the scoring is in memory, passed on as
records (outcomes.Outcomes) or summary.json's dict."""

from __future__ import annotations

from typing import Any

from ..export.card import add_scores
from ..export.particle import export_particle
from ..io import atomic_write_json
from ..report.outcomes import compute_outcomes
from ..report.plot import plot_swarm
from ..report.summary import build_summary


def finish(prep, rd, swarm, evals, elapsed_s: float) -> dict[str, Any]:
    config = prep.config
    with rd.writing(rd.best_dir):
        export_particle(rd.best_dir, prep.bank, swarm.g, config.base_model, score=swarm.g_score,
                        extra={"run": config.name, "iterations": swarm.iteration, "utility": config.utility.kind},
                        config=config)
    outcomes = compute_outcomes(prep, swarm, evals)
    summary = build_summary(prep, swarm, outcomes, elapsed_s, str(rd.best_dir))
    with rd.writing(rd.best_dir):  # the test score, known only now, into the card
        add_scores(rd.best_dir, test=summary["baselines"].get("test", {}).get("global best"))
    with rd.writing(rd.summary_file):
        atomic_write_json(rd.summary_file, summary)
    with rd.writing(rd.path / "utility.png"):
        plot_swarm(rd.path / "utility.png", rd.path.name, outcomes.search, swarm.history, swarm.trace)
    return summary
