"""Run the methods on one pool, count their evaluations, keep a journal, write compare.json.

    COMPARE_DIR/ (runs/<name>-compare by default)
      config.yaml, experts.json   as in a run directory
      evaluations.jsonl           every evaluation of every method (the cache: a killed
                                  compare resumes without scoring anything twice)
      rows/<method>-seed<S>.json  a finished method (validation, then test), written atomically
      model_swarms-seed<S>/       the swarm's own run directory
      compare.json, compare.png   the table's data and the best-so-far plot

Order per seed: model_swarms first (its search count is the searches' budget unless
--budget), then the rest; a method that is not seeded (fixed points, the TIES and task
arithmetic grids) runs at the first seed only. Test scores are taken after each seed's
methods, in one batch, and are never counted.
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from ..weights.candidates import Candidate, row_fields
from ..errors import UserError
from ..io import atomic_write_json
from ..search.lock import RunLock
from ..search.state import Evaluation, RunDir
from . import DEFAULT_METHODS, METHODS
from .base import Context

ROWS = "rows"


def compare_dir(config) -> Path:
    return Path(config.runs_dir) / f"{config.name}-compare"


def check_methods(methods: Optional[Sequence[str]]) -> list[str]:
    if not methods:
        return list(DEFAULT_METHODS)
    names = [m.strip() for spec in methods for m in spec.split(",") if m.strip()]
    for m in names:
        if m not in METHODS:
            raise UserError("--methods", f"unknown method '{m}' (have: {', '.join(DEFAULT_METHODS)})")
    return [m for m in DEFAULT_METHODS if m in names]  # the table's order, model_swarms first


def run_compare(prep, methods: Optional[Sequence[str]] = None, budget: Optional[int] = None, seeds: int = 1,
                out: Optional[Path] = None, address: Optional[str] = None, swarm_run: Optional[Path] = None,
                log: Callable[[str], None] = print, pool=None) -> dict[str, Any]:
    """Run (or resume) a comparison; returns compare.json's content. pool: a started pool (tests)."""
    from ..search.evaluations import Evaluations, start_pool
    from ..run.progress import Progress

    config, bank = prep.config, prep.bank
    names = check_methods(methods)
    if budget is not None and budget < 1:
        raise UserError("--budget", "must be >= 1")
    if seeds < 1:
        raise UserError("--seeds", "must be >= 1")
    if swarm_run is not None and seeds > 1:
        raise UserError("--swarm-run", "an existing run is one seed: leave --seeds at 1")
    searches = [m for m in names if METHODS[m].kind == "search"]
    if searches and budget is None and "model_swarms" not in names:
        raise UserError("--budget", f"{searches[0]} needs a budget: give --budget or include model_swarms")
    rd = RunDir(out or compare_dir(config))
    rd.path.mkdir(parents=True, exist_ok=True)
    with RunLock(rd.path):
        if rd.exists():
            rd.check_experts(bank.names)
            rd.check_scoring(config)
            log(f"resuming {rd.path}: {len(rd.read_journal())} evaluations in its journal")
        else:
            rd.create(config, bank.names, bank.sources, prep.config_path)
        (rd.path / ROWS).mkdir(exist_ok=True)
        progress = Progress(bank.names, 0, live=False)
        own = pool is None
        t0 = time.monotonic()
        if own:
            log("starting workers (loading base model and expert bank)")
            pool = start_pool(prep, address)
        startup_s = time.monotonic() - t0
        evals = Evaluations(rd, lambda: pool, progress)
        progress.message = lambda text: None  # the runner logs per method instead
        rows: list[dict[str, Any]] = []
        try:
            for k in range(seeds):
                seed = config.seed + k
                seed_budget = budget
                mine: list[dict[str, Any]] = []
                for name in names:
                    method = METHODS[name]
                    if not method.seeded and k > 0:
                        continue
                    if method.kind == "search" and seed_budget is None:
                        raise UserError("--budget", "model_swarms did not finish: no budget for the searches")
                    row = _load_row(rd, name, seed)
                    if row is not None and method.kind == "search" and row.get("budget") != seed_budget:
                        row = None  # another budget than this row's: search again (the journal still serves)
                    if row is None:
                        row = _run_method(prep, evals, pool, rd, name, seed,
                                          seed_budget if method.kind == "search" else None, swarm_run, log)
                    if name == "model_swarms" and budget is None:
                        seed_budget = row["evaluations"]
                    mine.append(row)
                _score_test(prep, evals, rd, mine)
                rows += mine
        finally:
            if own:
                evals.shutdown()
        result = _result(prep, rd, names, rows, budget, seeds, startup_s)
        result["stats"] = _stats(prep, evals.cache.values(), result)
        with rd.writing(rd.path / "compare.json"):
            atomic_write_json(rd.path / "compare.json", result)
        from .table import plot_compare

        with rd.writing(rd.path / "compare.png"):
            plot_compare(rd.path, result)
        return result


def _row_file(rd: RunDir, name: str, seed: int) -> Path:
    return rd.path / ROWS / f"{name}-seed{seed}.json"


def _load_row(rd: RunDir, name: str, seed: int) -> Optional[dict[str, Any]]:
    f = _row_file(rd, name, seed)
    return rd.read_json(f) if f.exists() else None


def _save_row(rd: RunDir, row: dict[str, Any]) -> None:
    f = _row_file(rd, row["method"], row["seed"])
    with rd.writing(f):
        atomic_write_json(f, row)


def _run_method(prep, evals, pool, rd, name, seed, budget, swarm_run, log) -> dict[str, Any]:
    method = METHODS[name]
    ctx = Context(prep=prep, evals=evals, seed=seed, budget=budget, workers=len(pool.actors) if pool else 1,
                  dir=rd.path, pool=pool, swarm_run=swarm_run, log=log)
    computed0 = evals.computed
    log(f"{name} (seed {seed}){f': budget {budget}' if budget is not None else ''} ...")
    t0 = time.monotonic()
    outcome = method.run(ctx)
    seconds = time.monotonic() - t0
    if name == "model_swarms" and outcome.info.get("seconds") is not None:
        seconds = float(outcome.info["seconds"])  # the search alone, as the run recorded it
    if budget is not None and ctx.used != budget:
        raise RuntimeError(f"{name} used {ctx.used} evaluations of its budget {budget}")
    row = {"method": name, "kind": method.kind, "seed": seed, "seeded": method.seeded, "budget": budget,
           "val": _num(outcome.val), "evaluations": ctx.used, "computed": evals.computed - computed0,
           "seconds": round(seconds, 2), **row_fields(outcome.candidate),
           "curve": [_num(x) for x in ctx.curve], "info": outcome.info}
    if name == "model_swarms" and outcome.info.get("test") is not None:
        row["test"] = outcome.info["test"]
    _save_row(rd, row)
    log(f"{name} (seed {seed}): validation {row['val']}, {ctx.used} evaluations, {seconds:.0f}s")
    return row


def _score_test(prep, evals, rd: RunDir, rows: list[dict[str, Any]]) -> None:
    """Each answer on the test split, in one batch; not counted."""
    if "test" not in prep.splits:
        return
    todo = [r for r in rows if "test" not in r]
    if todo:
        for r, ev in zip(todo, evals.score([Candidate.from_json(r) for r in todo], "test")):
            r["test"] = _num(math.nan if ev.failed else ev.score)
    for r in todo:
        _save_row(rd, r)


def _stats(prep, journal: Iterable[Evaluation], result: dict[str, Any]) -> dict[str, Any]:
    """stats.compare_stats over the journals: each row's test marks (the compare's journal,
    as the evaluation cache holds it, or a swarm's own run directory when it scored test
    there) and each swarm's final scores."""
    from .stats import compare_stats

    def test_marks(journal) -> dict[str, Any]:  # whole test evaluations only (test is never cut short)
        return {ev.hash: ev.per_example for ev in journal
                if ev.split == "test" and not ev.failed and ev.bound is None}

    marks, swarm_scores, own = {}, {}, test_marks(journal)
    for r in result["rows"]:
        key, run_dir = (r["method"], r["seed"]), r["info"].get("run_dir") if r["kind"] == "swarm" else None
        h = Candidate.from_json(r).key()
        marks[key] = own.get(h)
        if run_dir is not None and RunDir(run_dir).state_file.exists():
            swarm_scores[key] = RunDir(run_dir).read_json(RunDir(run_dir).state_file)["swarm"]["scores"]
            if marks[key] is None:
                marks[key] = test_marks(RunDir(run_dir).read_journal()).get(h)
    return compare_stats(result, marks, swarm_scores, len(prep.splits.get("val") or []))


def _num(x: Optional[float]) -> Optional[float]:
    return None if x is None or not math.isfinite(x) else float(x)


def stats(values: list[Optional[float]]) -> dict[str, Optional[float]]:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": round(float(v.mean()), 6), "std": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 6),
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def _result(prep, rd: RunDir, names, rows, budget, seeds, startup_s) -> dict[str, Any]:
    config = prep.config
    summary = {}
    for name in names:
        mine = [r for r in rows if r["method"] == name]
        summary[name] = {"kind": METHODS[name].kind, "seeds": [r["seed"] for r in mine],
                         "val": stats([r["val"] for r in mine]), "test": stats([r.get("test") for r in mine]),
                         "evaluations": round(float(np.mean([r["evaluations"] for r in mine])), 1),
                         "seconds": round(float(np.mean([r["seconds"] for r in mine])), 1)}
    ranked = [n for n in names if summary[n]["val"]["mean"] is not None]
    winner = max(ranked, key=lambda n: summary[n]["val"]["mean"]) if ranked else None  # first wins a tie
    win_row = None
    if winner:
        win_row = max((r for r in rows if r["method"] == winner), key=lambda r: r["val"] if r["val"] is not None else -1)
    return {
        "name": config.name,
        "experts": list(prep.bank.names),
        "kind": prep.bank.layout.kind,
        "utility": config.utility.kind,
        "methods": names,
        "seeds": [config.seed + k for k in range(seeds)],
        "budget": {"searches": budget if budget is not None else
                   [r["evaluations"] for r in rows if r["method"] == "model_swarms"],
                   "from": "--budget" if budget is not None else "model_swarms"},
        "winner": None if winner is None else {"method": winner, "seed": win_row["seed"],
                                               "val": win_row["val"], "test": win_row.get("test"),
                                               "chosen_on": "mean validation score over seeds"},
        "summary": summary,
        "rows": rows,
        "workers": config.workers.count,
        "startup_s": round(startup_s, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
    }
