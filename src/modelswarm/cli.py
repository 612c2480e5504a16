"""The command line: parse arguments, call the library, turn UserError into exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import OFFLINE_ENV
from .errors import UserError

for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Compose LLM experts by particle-swarm search in weight space (Model Swarms).")
experts_app = typer.Typer(no_args_is_help=True, help="Make or inspect experts.")
app.add_typer(experts_app, name="experts")
data_app = typer.Typer(no_args_is_help=True, help="Bring validation data into modelswarm's format.")
app.add_typer(data_app, name="data")
console = Console()

ADDRESS = typer.Option(None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: local Ray)")


def _overrides(workers: Optional[int], name: Optional[str]) -> dict:
    out: dict = {}
    if workers is not None:
        out["workers"] = {"count": workers}
    if name is not None:
        out["name"] = name
    return out


def _search(prep, address, resume, live) -> None:
    from .coordinator import run_swarm
    from .report import print_summary

    try:
        summary = run_swarm(prep, address=address, resume=resume, live=live)
    except KeyboardInterrupt:
        print(f"\ninterrupted; state is saved. Resume with:\n  modelswarm resume {prep.config.run_dir}", flush=True)
        raise typer.Exit(130)
    print_summary(summary, console)


@app.command()
def run(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    address: Optional[str] = ADDRESS,
    workers: Optional[int] = typer.Option(None, "--workers", help="number of evaluator actors"),
    name: Optional[str] = typer.Option(None, "--name", help="run name (default: the config's)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run directory if it exists"),
    live: Optional[bool] = typer.Option(None, "--live/--no-live", help="live table (default: on a terminal)"),
) -> None:
    """Run a swarm search and export the global best to runs/<name>/best/."""
    from .config import load_config
    from .coordinator import prepare
    from .state import RunDir

    cfg = load_config(config, _overrides(workers, name))
    prep = prepare(cfg, config)
    _search(prep, address, resume and RunDir(cfg.run_dir).exists(), live)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    address: Optional[str] = ADDRESS,
    live: Optional[bool] = typer.Option(None, "--live/--no-live"),
) -> None:
    """Continue an interrupted run from its state.json and evaluations.jsonl."""
    from .coordinator import prepare
    from .state import RunDir

    rd = RunDir(run_dir)
    cfg = rd.load_config().replace(runs_dir=str(rd.path.resolve().parent), name=rd.path.resolve().name)
    _search(prepare(cfg, rd.config_source()), address, True, live)


@app.command()
def status(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    plot: bool = typer.Option(False, "--plot", help="also write RUN_DIR/utility.png"),
) -> None:
    """Where a run stands: iteration, global best, per-particle scores."""
    from .state import RunDir
    from .swarm import Swarm
    from .progress import Progress

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
        from .plot import plot_run

        console.print(f"wrote {plot_run(run_dir)}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    out: Optional[Path] = typer.Option(None, "--out", help="output directory (default: RUN_DIR/best)"),
    rank: int = typer.Option(1, "--rank", help="1 = global best, 2 = second-best personal best, ..."),
    merged: bool = typer.Option(False, "--merged", help="also write RUN_DIR/merged: base + best adapter, merged"),
    method: Optional[str] = typer.Option(None, "--method", help="a compare directory: this method's answer "
                                                                  "(default: the winner)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="a compare directory: this seed's row"),
) -> None:
    """(Re)write a particle of a run as a PEFT adapter (LoRA) or HF model dir (full); or, from a
    compare directory, a method's answer (a delta-space merge as a merged HF model)."""
    import contextlib

    if (Path(run_dir) / "compare.json").is_file():
        from .compare.export import export_compare
        from .state import no_space

        with no_space(out or run_dir, "free some space, then export again"):
            target, row = export_compare(run_dir, out, method, seed)
        console.print(f"wrote {target} ({row['method']}, seed {row['seed']}, validation {row['val']})")
        return
    if method is not None or seed is not None:
        raise UserError(run_dir, "--method and --seed are for a compare directory (one with compare.json)")

    from .experts import load_bank
    from .export import export_particle
    from .lock import RunLock
    from .state import RunDir, no_space
    from .swarm import Swarm

    rd = RunDir(run_dir)
    cfg = rd.load_config()
    if not rd.state_file.exists():
        raise UserError(rd.state_file, "no state yet: the run has not scored its initial swarm")
    swarm = Swarm.from_json(rd.read_json(rd.state_file)["swarm"], cfg.swarm)
    top = swarm.top_k(max(rank, 1))
    if rank < 1 or rank > len(top):
        raise UserError("--rank", f"must be between 1 and {len(top)}")
    score, coeffs = top[rank - 1]
    bank = load_bank(cfg.experts)
    rd.check_experts(bank.names)
    target = out or rd.best_dir
    inside = merged or rd.path.resolve() in Path(target).resolve().parents
    with RunLock(rd.path) if inside else contextlib.nullcontext():  # not beside a live run's own writes
        with no_space(target, "free some space, then export again"):
            export_particle(target, bank, coeffs, cfg.base_model, score=score, extra={"run": cfg.name, "rank": rank})
        console.print(f"wrote {target} (score {score:.4f})")
        if merged:
            from .export import export_merged

            with no_space(rd.path / "merged", "free some space, then export again"):
                console.print(f"wrote {export_merged(run_dir)}")


@app.command()
def verify(
    run_dir: Path = typer.Argument(..., help="a finished run"),
    merged: bool = typer.Option(False, "--merged", help="check RUN_DIR/merged instead of best/"),
) -> None:
    """Load best/ the way other tools do (PEFT / transformers), re-score, compare with the run."""
    from .verify import verify_run

    ok = True
    for split, recorded, score, equal in verify_run(run_dir, merged):
        mark = "ok" if equal else ("differs (merged weights round differently)" if merged else "MISMATCH")
        console.print(f"{split}: recorded {recorded:.6f}, re-scored {score:.6f}: {mark}")
        ok &= equal or merged
    if not ok:
        raise typer.Exit(1)


@app.command("eval")
def eval_cmd(
    config: Path = typer.Argument(..., help="swarm config YAML (base model, utility, data)"),
    target: Path = typer.Argument(..., help="a PEFT adapter dir, an HF model dir, or a run dir (its best/)"),
    split: str = typer.Option("val", "--split", help="val or test"),
) -> None:
    """Score a checkpoint the way other tools load it (PEFT / transformers), on the config's data."""
    from .config import load_config
    from .verify import score_checkpoint

    cfg = load_config(config)
    score = score_checkpoint(cfg, target, split)
    console.print(f"{target}: {cfg.utility.kind} on {split} = {score:.4f}")


@app.command()
def baselines(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    address: Optional[str] = ADDRESS,
) -> None:
    """Score each expert, the uniform soup and the base model on validation (and test) data."""
    from .config import load_config
    from .coordinator import Evaluations, prepare, start_pool
    from .progress import Progress
    from .baselines import baseline_table
    from .state import RunDir
    import tempfile

    cfg = load_config(config)
    prep = prepare(cfg, config)
    with tempfile.TemporaryDirectory() as tmp:  # a throwaway journal: baselines are not a run
        evals = Evaluations(RunDir(tmp), lambda: start_pool(prep, address),
                            Progress(prep.bank.names, 0, live=False, console=Console(stderr=True)))
        try:
            table = baseline_table(prep, evals)
        finally:
            evals.shutdown()
    from rich.table import Table

    t = Table(title="baselines")
    t.add_column("model")
    t.add_column("validation", justify="right")
    if "test" in table:
        t.add_column("test", justify="right")
    for k, v in table["val"].items():
        t.add_row(k, f"{v:.4f}", *([f"{table['test'][k]:.4f}"] if "test" in table else []))
    console.print(t)
    console.print(f"best single expert (on validation): {table['best_single_expert']}")


@app.command()
def compare(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    methods: Optional[list[str]] = typer.Option(None, "--methods", help="comma-separated or repeated; default: all "
                                                "(model_swarms, best_expert, uniform_soup, greedy_soup, "
                                                "task_arithmetic, ties, dare_ties, lorahub, cma_es, random_search)"),
    budget: Optional[int] = typer.Option(None, "--budget", help="validation evaluations per search "
                                                                 "(default: what model_swarms used)"),
    seeds: int = typer.Option(1, "--seeds", help="run the seeded methods with seeds seed, seed+1, ...: mean and spread"),
    swarm_run: Optional[Path] = typer.Option(None, "--swarm-run", help="use this finished run as model_swarms"),
    out: Optional[Path] = typer.Option(None, "--out", help="compare directory (default: runs/<name>-compare)"),
    address: Optional[str] = ADDRESS,
) -> None:
    """Model Swarms against soups, data-free merges and black-box searches, on one budget."""
    from .compare.runner import run_compare
    from .compare.table import print_compare
    from .config import load_config
    from .coordinator import prepare

    cfg = load_config(config)
    prep = prepare(cfg, config)
    if swarm_run is not None and not (swarm_run / "summary.json").is_file():
        raise UserError(swarm_run, "not a finished run (no summary.json)")
    try:
        result = run_compare(prep, methods, budget, seeds, out, address, swarm_run,
                             log=lambda m: console.print(m, highlight=False))
    except KeyboardInterrupt:
        print("\ninterrupted; finished evaluations are journaled. Run the same command again to resume.", flush=True)
        raise typer.Exit(130)
    print_compare(result, console)
    w = result["winner"]
    if w:
        console.print(f"winner on validation: {w['method']} (seed {w['seed']}); export it with "
                      f"`modelswarm export {out or Path(cfg.runs_dir) / (cfg.name + '-compare')}`")


@app.command()
def plan(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    warmup: int = typer.Option(8, "--warmup", help="examples in the first timing pass; the sample doubles "
                                                     "while a pass takes under 2 s (0: skip the timing)"),
) -> None:
    """Dry run: sizes, memory per worker, evaluations, and an estimated time."""
    from .config import load_config
    from .plan import make_plan

    cfg = load_config(config)
    p = make_plan(cfg, warmup)
    fmt_s = lambda s: "?" if s is None else (f"{s:.1f}s" if s < 120 else f"{s / 60:.1f} min")  # noqa: E731
    console.print(
        f"experts: {p.experts} ({p.kind}), particles: {p.particles}\n"
        f"expert bank: {p.bank_params:,} parameters per expert, {p.bank_mb} MB in all (shared by a node's workers)\n"
        f"base model: {p.base_params:,} parameters, {p.base_mb} MB as {p.dtype}"
        f"{' (auto)' if cfg.workers.dtype == 'auto' else ''}; bfloat16 {p.bf16}\n"
        + "".join(f"{name}: {mb} MB in each worker, next to the particle model\n" for name, mb in p.side_models.items())
        + f"per worker: about {p.worker_mb} MB plus the Python/torch runtime, x {cfg.workers.count} workers\n"
        f"validation: {p.val_examples} examples, test: {p.test_examples}\n"
        f"evaluations: {p.evals_per_iteration} per iteration, at most {p.max_evaluations} in all\n"
        f"time (from a {p.warmup_examples}-example warm-up): {fmt_s(p.seconds_per_eval)} per evaluation"
        + (f" ({p.evals_per_minute:.0f} per minute with {cfg.workers.count} workers)" if p.evals_per_minute else "")
        + (f"; as {p.other_dtype['dtype']}: {fmt_s(p.other_dtype['seconds_per_eval'])} per evaluation"
           if p.other_dtype else "")
        + f"\n  {fmt_s(p.seconds_per_iteration)} per iteration, at most {fmt_s(p.max_seconds)} "
        f"for {cfg.swarm.max_iterations} iterations (sooner if patience stops it)", highlight=False)


@app.command()
def demo(
    config: Path = typer.Option(Path("swarm_configs/demo.yaml"), "--config"),
    name: Optional[str] = typer.Option(None, "--name", help="run name (default: demo-<timestamp>)"),
    address: Optional[str] = ADDRESS,
    live: Optional[bool] = typer.Option(None, "--live/--no-live"),
) -> None:
    """The offline demo: SmolLM2-135M-Instruct, six LoRA specialists, one mixed-skill swarm."""
    from .demo.run import prepare_demo

    _search(prepare_demo(config, name, log=lambda m: console.print(m, highlight=False)), address, False, live)


@experts_app.command("train")
def experts_train(
    out: Path = typer.Argument(..., help="adapter directory to write"),
    data: list[Path] = typer.Option(..., "--data", help="JSONL of {prompt, answer}; repeat for several files"),
    base: Optional[Path] = typer.Option(None, "--base", help="base model dir (default: the demo's SmolLM2-135M)"),
    steps: int = typer.Option(150, "--steps"),
    lr: float = typer.Option(3e-3, "--lr"),
    rank: int = typer.Option(8, "--rank"),
    seed: int = typer.Option(0, "--seed", help="LoRA init and data order; keep it equal across one swarm's experts"),
) -> None:
    """Fine-tune one LoRA expert on (prompt, answer) pairs."""
    import json

    from .demo.smollm import ensure_base
    from .train import TrainRecipe, train_files

    for f in data:
        if not f.is_file():
            raise UserError(f, "data file not found")
    recipe = TrainRecipe(steps=steps, lr=lr, rank=rank, alpha=2 * rank, seed=seed)
    info = train_files(base or ensure_base(), data, out, recipe, progress=True, label=out.name)
    console.print(json.dumps(info, indent=2))


@experts_app.command("make-demo")
def experts_make_demo(
    out: Path = typer.Argument(Path("experts/demo"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all six)"),
) -> None:
    """Rebuild the demo's task suite and its six LoRA specialists (about 15 minutes on 2 cores)."""
    from .demo.build import make_demo

    make_demo(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-suite2")
def experts_make_suite2(
    out: Path = typer.Argument(Path("experts/suite2"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the second suite (count, sort, shift, max + shift_of_max) and its four LoRA experts."""
    from .demo.suite2 import make_suite2

    make_suite2(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-suite3")
def experts_make_suite3(
    out: Path = typer.Argument(Path("experts/suite3"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the hard held-out suite (sort, unique, echo, reverse + sort_unique) and its four LoRA experts."""
    from .demo.suite3 import make_suite3

    make_suite3(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-suite4")
def experts_make_suite4(
    out: Path = typer.Argument(Path("experts/suite4"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the multiple-choice held-out suite (prev, min, upper, bigger + prev_of_min) and its four LoRA experts."""
    from .demo.suite4 import make_suite4

    make_suite4(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-tiny")
def make_tiny(out: Path = typer.Argument(Path("experts/tiny"), help="where to write the tiny world")) -> None:
    """Build the tiny test world: a 2-layer random Llama, LoRA specialists, data."""
    from .tiny import build_world

    paths = build_world(out)
    console.print(f"tiny world written under {out}: " + ", ".join(f"{k}={v}" for k, v in paths.items()))


@data_app.command("import-official")
def data_import_official(
    file: Path = typer.Argument(..., help="an official data file (model_swarm data/eval/*.json: {dev, test})"),
    out_dir: Path = typer.Argument(..., help="where dev.jsonl and test.jsonl go"),
) -> None:
    """Turn one of the official repo's task files into dev.jsonl (utility.data) and test.jsonl (utility.test_data)."""
    from .official_data import import_official, suggested_kind

    counts = import_official(file, out_dir)
    console.print(", ".join(f"{out_dir / name}: {n} examples" for name, n in counts.items())
                  + f" (for utility.kind {suggested_kind(out_dir)})", highlight=False)


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"modelswarm: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
