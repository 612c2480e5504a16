"""`modelswarm export`: a run's k-th best particle (and merged/), or a compare directory's answer."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Optional

from ..errors import UserError


def export_command(run_dir: Path, out: Optional[Path], rank: int, merged: bool, method: Optional[str],
                   seed: Optional[int], log: Callable[[str], None], lm_eval_task: Optional[Path] = None) -> None:
    if (Path(run_dir) / "compare.json").is_file():
        if lm_eval_task is not None:
            raise UserError("--lm-eval-task", "is for a run directory, not a compare directory")
        from ..compare.export import export_compare
        from ..errors import no_space

        with no_space(out or run_dir, "free some space, then export again"):
            target, row = export_compare(run_dir, out, method, seed)
        log(f"wrote {target} ({row['method']}, seed {row['seed']}, validation {row['val']})")
        return
    if method is not None or seed is not None:
        raise UserError(run_dir, "--method and --seed are for a compare directory (one with compare.json)")
    target = export_rank(run_dir, out, rank, merged, log)
    if lm_eval_task is not None:
        from ..export.lm_eval import write_lm_eval_tasks
        from ..search.state import RunDir

        write_lm_eval_tasks(RunDir(run_dir).load_config(), target, lm_eval_task, log)


def export_rank(run_dir: Path, out: Optional[Path], rank: int, merged: bool, log: Callable[[str], None]) -> Path:
    """The rank-th of the run's top-k (1 = the global best) to out (default: best/)."""
    from ..export.card import recorded_scores
    from ..weights.experts import load_bank
    from ..export.particle import export_merged, export_particle
    from ..search.lock import RunLock
    from ..errors import no_space
    from ..search.state import RunDir
    from ..search.swarm import Swarm

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
            extra = {"run": cfg.name, "rank": rank, **recorded_scores(rd.summary_file, coeffs)}
            export_particle(target, bank, coeffs, cfg.base_model, score=score, extra=extra, config=cfg)
        log(f"wrote {target} (score {score:.4f})")
        if merged:
            with no_space(rd.path / "merged", "free some space, then export again"):
                log(f"wrote {export_merged(run_dir)}")
    return Path(target)
