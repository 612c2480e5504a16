"""The command line: parse arguments, call the library, turn UserError into exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import UserError

for _k, _v in {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)  # no hub, no download, quiet

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Compose LLM experts by particle-swarm search in weight space (Model Swarms).")
experts_app = typer.Typer(no_args_is_help=True, help="Make or inspect experts.")
app.add_typer(experts_app, name="experts")
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
def status(run_dir: Path = typer.Argument(..., help="runs/<name>")) -> None:
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
    console.print(view._render())
    console.print(f"status: {d.get('status')}, elapsed {d.get('elapsed_s', 0):.0f}s, "
                  f"global best coefficients {[round(c, 4) for c in swarm.g.tolist()]}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="runs/<name>"),
    out: Optional[Path] = typer.Option(None, "--out", help="output directory (default: RUN_DIR/best)"),
    rank: int = typer.Option(1, "--rank", help="1 = global best, 2 = second-best personal best, ..."),
) -> None:
    """(Re)write a particle of a run as a PEFT adapter (LoRA) or HF model dir (full)."""
    from .experts import load_bank
    from .export import export_particle
    from .state import RunDir
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
    export_particle(target, bank, coeffs, cfg.base_model, score=score, extra={"run": cfg.name, "rank": rank})
    console.print(f"wrote {target} (score {score:.4f})")


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
    from .report import baseline_table
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


@experts_app.command("make-tiny")
def make_tiny(out: Path = typer.Argument(Path("experts/tiny"), help="where to write the tiny world")) -> None:
    """Build the tiny test world: a 2-layer random Llama, LoRA specialists, data."""
    from .tiny import build_world

    paths = build_world(out)
    console.print(f"tiny world written under {out}: " + ", ".join(f"{k}={v}" for k, v in paths.items()))


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"modelswarm: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
