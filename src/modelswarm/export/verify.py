"""Score a checkpoint through the loaders other tools use: PeftModel.from_pretrained for an
adapter, AutoModelForCausalLM.from_pretrained for a full model. This is the independent path
that checks an export: it shares no weight-handling code with the search."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from ..config import Config
from ..errors import UserError
from ..weights.experts import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from ..objectives import make_utility
from ..engine.models import DTYPES, load_tokenizer, resolve_dtype


def load_checkpoint(base_model: str, target: Path, dtype: Optional[torch.dtype] = None) -> torch.nn.Module:
    """dtype: load the weights as this (default: as stored); PEFT keeps adapter weights in
    float32 over a bfloat16 or float16 base, as it does in a worker."""
    from transformers import AutoModelForCausalLM

    kw = {"dtype": dtype} if dtype is not None else {}

    target = Path(target)
    if (target / "best").is_dir():  # a run directory
        target = target / "best"
    if (target / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        if not (target / ADAPTER_WEIGHTS).is_file():
            raise UserError(target / ADAPTER_WEIGHTS, "missing adapter weights")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model, **kw), str(target))
    elif (target / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(str(target), **kw)
    else:
        raise UserError(target, "not a PEFT adapter dir, an HF model dir or a run dir")
    return model.eval()


def score_checkpoint(config: Config, target: Path, split: str = "val") -> float:
    return score_splits(config, target, [split])[split]


def run_dtype(config: Config) -> str:
    """The dtype a re-score uses by default: the run's, resolved here (the CPU) as it does for `auto`."""
    return resolve_dtype(config.workers.dtype, torch.device("cpu"))


def score_splits(config: Config, target: Path, splits: list[str], dtype: Optional[str] = None) -> dict[str, float]:
    """Load the checkpoint once and score it on each split ("val", "test"); dtype: the run's when unset."""
    utility = make_utility(config.utility)
    utility.check()
    examples = {s: utility.load_split(s) for s in splits}
    if any(ex is None for ex in examples.values()):
        raise UserError("utility.test_data", "is not set in the config")
    # by default in the dtype the run scored in, so that an unmerged adapter scores exactly as it did there
    model = load_checkpoint(config.base_model, target, DTYPES[dtype or run_dtype(config)])
    tok = load_tokenizer(config.base_model)
    return {s: utility.score(model, tok, ex).value for s, ex in examples.items()}


def verify_run(run_dir: Path, merged: bool = False) -> list[tuple[str, float, float, bool]]:
    """Re-score best/ (or merged/) through PEFT/transformers; compare with the recorded scores.

    Returns (split, recorded, rescored, equal) rows. LoRA adapters loaded unmerged hold the
    very weights that were searched, so the scores must be equal; a merged model folds
    B@A into W, which changes the float rounding, so it is reported, not required equal.
    """
    import json

    from ..search.state import RunDir
    from ..report.summary import recorded_best

    rd = RunDir(run_dir)
    config = rd.load_config()
    if not rd.summary_file.exists():
        raise UserError(rd.summary_file, "the run has not finished (no summary.json)")
    summary = json.loads(rd.summary_file.read_text())
    target = rd.path / "merged" if merged else rd.best_dir
    if not target.is_dir():
        raise UserError(target, "not found" + (" (make it with: modelswarm export RUN_DIR --merged)" if merged else ""))
    rows = [(split, score) for split, score in recorded_best(summary).items()
            if split == "val" or config.utility.test_data]
    scores = score_splits(config, target, [split for split, _ in rows])
    return [(split, recorded, scores[split], scores[split] == recorded) for split, recorded in rows]


def verify_command(run_dir: Path, merged: bool, dtype: Optional[str], log: Callable[[str], None]) -> bool:
    """`modelswarm verify`: one line per split; False on a mismatch (a merged model may differ).
    With dtype, also each split re-scored in that dtype and the difference."""
    ok = True
    check_dtype(dtype)
    rows = verify_run(run_dir, merged)
    for split, recorded, score, equal in rows:
        mark = "ok" if equal else ("differs (merged weights round differently)" if merged else "MISMATCH")
        log(f"{split}: recorded {recorded:.6f}, re-scored {score:.6f}: {mark}")
        ok &= equal or merged
    for line in rescore_in_dtype(run_dir, dtype, rows, merged) if dtype else []:
        log(line)
    return ok


def eval_command(config_path: Path, target: Path, split: str, log: Callable[[str], None]) -> float:
    """`modelswarm eval`: score a checkpoint on the config's data and say so."""
    from ..config import load_config

    cfg = load_config(config_path)
    score = score_checkpoint(cfg, target, split)
    log(f"{target}: {cfg.utility.kind} on {split} = {score:.4f}")
    return score


def check_dtype(dtype: Optional[str]) -> bool:
    """True, or a UserError for a dtype --dtype does not know (before minutes of scoring)."""
    if dtype is not None and dtype not in DTYPES:
        raise UserError("--dtype", f"is {dtype!r}; one of {', '.join(DTYPES)}")
    return True


def rescore_in_dtype(run_dir: Path, dtype: str, rows: list[tuple[str, float, float, bool]],
                     merged: bool = False) -> list[str]:
    """Re-score the same checkpoint in another dtype (the one a user deploys in): one line per
    split with both dtypes' scores and the difference. rows: verify_run's, in the run's dtype."""
    from ..search.state import RunDir

    check_dtype(dtype)
    rd = RunDir(run_dir)
    config = rd.load_config()
    target = rd.path / "merged" if merged else rd.best_dir
    scores = score_splits(config, target, [split for split, *_ in rows], dtype)
    mine = run_dtype(config)
    return [f"{split}: {mine} {rescored:.6f}, {dtype} {scores[split]:.6f}, difference "
            f"{scores[split] - rescored:+.6f}" for split, _, rescored, _ in rows]
