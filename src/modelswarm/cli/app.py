"""The command line: parse arguments, call the library, turn UserError into exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .. import OFFLINE_ENV
from ..errors import UserError

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


def _interruptible(fn, *args) -> None:
    from .commands import Interrupted

    try:
        fn(*args)
    except Interrupted as exc:
        print(exc, flush=True)
        raise typer.Exit(130)


def _say(message: str) -> None:
    console.print(message, highlight=False)


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
    from .commands import run_command

    _interruptible(run_command, config, _overrides(workers, name), address, resume, live, console)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    address: Optional[str] = ADDRESS,
    live: Optional[bool] = typer.Option(None, "--live/--no-live"),
) -> None:
    """Continue an interrupted run from its state.json and evaluations.jsonl."""
    from .commands import resume_command

    _interruptible(resume_command, run_dir, address, live, console)


@app.command()
def status(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    plot: bool = typer.Option(False, "--plot", help="also write RUN_DIR/utility.png"),
) -> None:
    """Where a run stands: iteration, global best, per-particle scores."""
    from .status import show_status

    show_status(run_dir, plot, console)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    out: Optional[Path] = typer.Option(None, "--out", help="output directory (default: RUN_DIR/best)"),
    rank: int = typer.Option(1, "--rank", help="1 = global best, 2 = second-best personal best, ..."),
    merged: bool = typer.Option(False, "--merged", help="also write RUN_DIR/merged: base + best adapter, merged"),
    method: Optional[str] = typer.Option(None, "--method", help="a compare directory: this method's answer "
                                                                  "(default: the winner)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="a compare directory: this seed's row"),
    lm_eval_task: Optional[Path] = typer.Option(None, "--lm-eval-task", help="also write lm-eval task YAMLs for the "
                                                "run's validation and test data to this directory, and the "
                                                "lm_eval command that re-checks the particle's score"),
) -> None:
    """(Re)write a particle of a run as a PEFT adapter (LoRA) or HF model dir (full); or, from a
    compare directory, a method's answer (a delta-space merge as a merged HF model)."""
    from .export_run import export_command

    # soft_wrap: the lm_eval command it prints stays one line to copy
    export_command(run_dir, out, rank, merged, method, seed,
                   lambda line: console.print(line, soft_wrap=True, markup=False), lm_eval_task)


@app.command()
def verify(
    run_dir: Path = typer.Argument(..., help="a finished run"),
    merged: bool = typer.Option(False, "--merged", help="check RUN_DIR/merged instead of best/"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="also re-score in this dtype (float32, bfloat16, "
                                                              "float16) and report the difference"),
) -> None:
    """Load best/ the way other tools do (PEFT / transformers), re-score, compare with the run."""
    from ..export.verify import verify_command

    if not verify_command(run_dir, merged, dtype, console.print):
        raise typer.Exit(1)


@app.command("eval")
def eval_cmd(
    config: Path = typer.Argument(..., help="swarm config YAML (base model, utility, data)"),
    target: Path = typer.Argument(..., help="a PEFT adapter dir, an HF model dir, or a run dir (its best/)"),
    split: str = typer.Option("val", "--split", help="val or test"),
) -> None:
    """Score a checkpoint the way other tools load it (PEFT / transformers), on the config's data."""
    from ..export.verify import eval_command

    eval_command(config, target, split, console.print)


@app.command()
def baselines(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    address: Optional[str] = ADDRESS,
) -> None:
    """Score each expert, the uniform soup and the base model on validation (and test) data."""
    from .commands import baselines_command

    baselines_command(config, address, console)


@app.command()
def compare(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    methods: Optional[list[str]] = typer.Option(None, "--methods", help="comma-separated or repeated; default: all "
                                                "(model_swarms, model_swarms_layers, best_expert, uniform_soup, "
                                                "greedy_soup, task_arithmetic, ties, dare_ties, lorahub, cma_es, bo, "
                                                "random_search)"),
    budget: Optional[int] = typer.Option(None, "--budget", help="validation evaluations per search "
                                                                 "(default: what model_swarms used)"),
    seeds: int = typer.Option(1, "--seeds", help="run the seeded methods with seeds seed, seed+1, ...: mean and spread"),
    swarm_run: Optional[Path] = typer.Option(None, "--swarm-run", help="use this finished run as model_swarms"),
    out: Optional[Path] = typer.Option(None, "--out", help="compare directory (default: runs/<name>-compare)"),
    address: Optional[str] = ADDRESS,
) -> None:
    """Model Swarms against soups, data-free merges and black-box searches, on one budget."""
    from .commands import compare_command

    _interruptible(compare_command, config, methods, budget, seeds, swarm_run, out, address, console)


@app.command()
def plan(
    config: Path = typer.Argument(..., help="swarm config YAML"),
    warmup: int = typer.Option(8, "--warmup", help="examples in the first timing pass; the sample doubles "
                                                     "while a pass takes under 2 s (0: skip the timing)"),
) -> None:
    """Dry run: sizes, memory per worker, evaluations, and an estimated time."""
    from .plan import plan_command

    plan_command(config, warmup, _say)


@app.command()
def demo(
    config: Path = typer.Option(Path("swarm_configs/demo.yaml"), "--config"),
    name: Optional[str] = typer.Option(None, "--name", help="run name (default: demo-<timestamp>)"),
    address: Optional[str] = ADDRESS,
    live: Optional[bool] = typer.Option(None, "--live/--no-live"),
) -> None:
    """The offline demo: SmolLM2-135M-Instruct, six LoRA specialists, one mixed-skill swarm."""
    from .commands import demo_command

    _interruptible(demo_command, config, name, address, live, console)


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

    from ..demo.smollm import ensure_base
    from ..train import TrainRecipe, train_files

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
    from ..demo.build import make_demo

    make_demo(out, skills=skill, log=_say)


@experts_app.command("make-suite2")
def experts_make_suite2(
    out: Path = typer.Argument(Path("experts/suite2"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the second suite (count, sort, shift, max + shift_of_max) and its four LoRA experts."""
    from ..demo.suite2 import make_suite2

    make_suite2(out, skills=skill, log=_say)


@experts_app.command("make-suite3")
def experts_make_suite3(
    out: Path = typer.Argument(Path("experts/suite3"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the hard held-out suite (sort, unique, echo, reverse + sort_unique) and its four LoRA experts."""
    from ..demo.suite3 import make_suite3

    make_suite3(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-suite4")
def experts_make_suite4(
    out: Path = typer.Argument(Path("experts/suite4"), help="where the suite, experts and manifest go"),
    skill: Optional[list[str]] = typer.Option(None, "--skill", help="only these skills (default: all four)"),
) -> None:
    """Build the multiple-choice held-out suite (prev, min, upper, bigger + prev_of_min) and its four LoRA experts."""
    from ..demo.suite4 import make_suite4

    make_suite4(out, skills=skill, log=lambda m: console.print(m, highlight=False))


@experts_app.command("make-tiny")
def make_tiny(out: Path = typer.Argument(Path("experts/tiny"), help="where to write the tiny world")) -> None:
    """Build the tiny test world: a 2-layer random Llama, LoRA specialists, data."""
    from ..tiny import build_world

    paths = build_world(out)
    console.print(f"tiny world written under {out}: " + ", ".join(f"{k}={v}" for k, v in paths.items()))


@data_app.command("import-official")
def data_import_official(
    file: Path = typer.Argument(..., help="an official data file (model_swarm data/eval/*.json: {dev, test})"),
    out_dir: Path = typer.Argument(..., help="where dev.jsonl and test.jsonl go"),
) -> None:
    """Turn one of the official repo's task files into dev.jsonl (utility.data) and test.jsonl (utility.test_data)."""
    from ..objectives.official_data import import_official, suggested_kind

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
