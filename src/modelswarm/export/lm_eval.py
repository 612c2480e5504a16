"""`modelswarm export --lm-eval-task DIR`: lm-evaluation-harness tasks for a run's own data.

DIR receives the examples the run scored (validation.jsonl: the first max_examples when the
config cuts them; test.jsonl: the whole test split), one task YAML per split over them
(`dataset_path: json`, data_files the absolute paths of those copies), and the lm_eval
command that re-scores the exported particle on them (lm_eval.txt, also printed).

A task follows the run's scoring rule as far as lm-eval has it:
  lm_eval                     the run's own task config (a YAML path through `include:`)
  multiple_choice (loglik)    output_type multiple_choice, metric acc: the highest summed
                              log-likelihood of " " + choice after the question
  exact_match (first_line)    generate_until to the first newline, exact_match ignoring case,
                              surrounding whitespace, quotes and final periods
Other rules (multiple_choice `generate`, exact_match `contains` / `last_words`, reward
models, judges, python functions, multitask) have no lm-eval counterpart: the export says so.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Callable

import yaml

from ..errors import UserError

# modelswarm's first_line normaliser, as lm-eval's exact_match regexes (applied to both sides)
FIRST_LINE_IGNORE = [r"^[\s\"'`]+", r"[\s\"'`.]+$"]
SPLITS = {"val": "validation", "test": "test"}


def task_body(utility: Any) -> dict[str, Any]:
    """The scoring part of the task (no dataset keys) for the run's utility config."""
    cfg = utility.config
    kind = cfg.kind
    if kind == "lm_eval":
        if isinstance(cfg.task, str):
            # through include: the file's own !function tags and includes resolve beside it
            return {"include": str(Path(cfg.task).resolve())}
        from ..objectives.lm_harness import DATASET_KEYS

        return {k: v for k, v in cfg.task.items() if k not in DATASET_KEYS and k not in ("task", "group", "tag")}
    if kind == "multiple_choice" and cfg.scoring == "loglik":
        return {"output_type": "multiple_choice", "doc_to_text": "question", "doc_to_choice": "choices",
                "doc_to_target": "answer", "target_delimiter": " ", "metric_list": [{"metric": "acc"}]}
    if kind == "exact_match" and cfg.match == "first_line":
        return {"output_type": "generate_until", "doc_to_text": "prompt", "doc_to_target": "answer",
                "generation_kwargs": {"until": ["\n"], "max_gen_toks": cfg.max_new_tokens, "do_sample": False},
                "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                                 "ignore_case": True, "regexes_to_ignore": FIRST_LINE_IGNORE}]}
    rule = {"multiple_choice": "scoring: generate", "exact_match": f"match: {getattr(cfg, 'match', '')}"}.get(kind, "")
    raise UserError("--lm-eval-task", f"utility kind {kind!r} {rule} has no lm-eval counterpart (lm_eval, "
                                      "multiple_choice with scoring loglik, exact_match with match first_line have)")


def task_name(run_name: str, split: str) -> str:
    return "modelswarm_" + re.sub(r"[^A-Za-z0-9_]+", "_", run_name) + "_" + SPLITS[split]


def model_args(config: Any, target: Path) -> str:
    """lm_eval's --model_args for the exported particle: base + adapter, or a full model dir."""
    from .verify import run_dtype

    target = Path(target).resolve()
    dtype = run_dtype(config)
    if (target / "adapter_config.json").is_file():
        return f"pretrained={Path(config.base_model).resolve()},peft={target},dtype={dtype}"
    return f"pretrained={target},dtype={dtype}"


def command(config: Any, target: Path, out: Path, tasks: list[str], chat: bool) -> list[str]:
    cmd = ["lm_eval", "--model", "hf", "--model_args", model_args(config, target), "--include_path", str(out),
           "--tasks", ",".join(tasks), "--batch_size", str(config.utility.batch_sequences)]
    if chat:
        cmd.append("--apply_chat_template")
    if config.utility.system_prompt:
        cmd += ["--system_instruction", config.utility.system_prompt]
    return cmd


def write_lm_eval_tasks(config: Any, target: Path, out: Path, log: Callable[[str], None]) -> list[str]:
    """Write DIR (data copies, task YAMLs, lm_eval.txt); returns the lm_eval command."""
    from ..engine.models import load_tokenizer
    from ..engine.prompts import uses_chat_template
    from ..objectives import make_utility

    utility = make_utility(config.utility)
    body = task_body(utility)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for split, label in SPLITS.items():
        examples = utility.load_split(split)
        if examples is None:
            continue
        data = out / f"{label}.jsonl"
        data.write_text("".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples), encoding="utf-8")
        name = task_name(config.name, split)
        task = {"task": name, **body, "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
                "training_split": None, "validation_split": None, "fewshot_split": None, "dataset_name": None}
        (out / f"{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), encoding="utf-8")
        names.append(name)
    chat = uses_chat_template(load_tokenizer(config.base_model), config.utility.engine)
    cmd = command(config, target, out, names, chat)
    line = shlex.join(cmd)
    (out / "lm_eval.txt").write_text(line + "\n")
    log(f"wrote {out} (lm-eval tasks {', '.join(names)}); re-check with:\n  {line}")
    return cmd
