"""lm_eval: score a particle on an lm-evaluation-harness task config, on the resident model.

The task is a YAML path or an inline mapping in lm-eval's task format (output_type,
doc_to_text, doc_to_choice / doc_to_target, generation_kwargs, metric_list, filter_list);
its documents are the lines of `data` / `test_data` (any JSON fields the task's templates
read). The task's own dataset keys are replaced: the split scored is the examples handed to
score_with, so `max_examples` cuts it like any other kind's.

A worker wraps the model its engine holds (lm-eval's HFLM over the loaded module and its
tokenizer, made once) and runs lm-eval's own evaluator on it for every particle, set up as
the lm_eval command sets it up: the model is never reloaded, and the marks are lm-eval's
(the `metric` of `filter`, per document).
The engine's `batch_sequences`, `chat_template` and `system_prompt` keys are passed on
(batch size, apply_chat_template, system_instruction); `max_new_tokens` is not: a
generate_until task's generation_kwargs say how far to generate.

lm-eval is the optional `lmeval` extra; it is imported only when a task is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import Field

from ..errors import UserError
from .base import Score, Utility, UtilitySection, kind_key
from .data import read_jsonl

INSTALL = "needs lm-eval, the optional extra: pip install 'model-swarms[lmeval]'"
# keys of the task config that say where its documents come from: the utility's data replaces them
DATASET_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset", "training_split",
                "validation_split", "test_split", "fewshot_split")
SPLIT = "test"  # the one split a scoring task holds


def require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError("utility.kind", f"'lm_eval' {INSTALL}") from None


def read_task(task: Union[str, dict]) -> dict[str, Any]:
    """The task config as a mapping: an inline one as given; a YAML file through lm-eval's
    loader, which resolves its `include:` and `!function` tags relative to the file."""
    if isinstance(task, dict):
        return dict(task)
    path = Path(task)
    if not path.is_file():
        raise UserError("utility.task", f"task YAML not found: {path}")
    require_lm_eval()
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        return load_yaml(path)
    except Exception as exc:  # yaml errors, a missing include or !function module
        raise UserError(f"utility.task ({path})", f"not a loadable lm-eval task: {exc}") from None


class LmEvalConfig(UtilitySection):
    kind: Literal["lm_eval"] = kind_key("lm_eval")
    task: Union[str, dict[str, Any]] = Field(
        description="the lm-eval task config: a YAML path (its `include:` and `!function` resolve relative to "
        "it) or an inline mapping; its dataset keys are replaced by `data` / `test_data`")
    metric: Optional[str] = Field(None, description="the metric that is the score, a name from the task's "
                                  "metric_list (default: its first)")
    filter: Optional[str] = Field(None, description="the filter whose output is scored, a name from the task's "
                                  "filter_list (default: its first, or `none` without one)")


class LmEval(Utility):
    Config = LmEvalConfig

    def __init__(self, config: LmEvalConfig):
        super().__init__(config)
        self._lm: Optional[tuple[Any, Any]] = None  # (engine model, HFLM over it), made once per worker

    def task_config(self) -> dict[str, Any]:
        """The task without its dataset keys, named after its own `task` (default: modelswarm)."""
        raw = read_task(self.config.task)
        cfg = {k: v for k, v in raw.items() if k not in DATASET_KEYS and k not in ("group", "tag")}
        cfg["task"] = str(raw.get("task") or "modelswarm")
        if "output_type" not in cfg:
            raise UserError("utility.task", "has no output_type (multiple_choice, loglikelihood, generate_until, ...)")
        return cfg

    def metric_and_filter(self, cfg: dict[str, Any]) -> tuple[str, str]:
        metrics = [m["metric"] for m in cfg.get("metric_list") or [] if isinstance(m, dict) and "metric" in m]
        metric = self.config.metric or (metrics[0] if metrics else None)
        if metric is None:
            raise UserError("utility.metric", "is needed: the task has no metric_list")
        if metrics and metric not in metrics:
            raise UserError("utility.metric", f"{metric!r} is not in the task's metric_list {metrics}")
        filters = [f["name"] for f in cfg.get("filter_list") or [] if isinstance(f, dict) and "name" in f]
        name = self.config.filter or (filters[0] if filters else "none")
        if self.config.filter is not None and name not in (filters or ["none"]):
            raise UserError("utility.filter", f"{name!r} is not in the task's filter_list {filters or ['none']}")
        return metric, name

    def check(self) -> None:
        require_lm_eval()
        self.metric_and_filter(self.task_config())

    def load(self, path):
        return [obj for _, obj in read_jsonl(path)]

    def lm(self, engine) -> Any:
        """lm-eval's HFLM over the engine's model, made on first use and kept while the model is the same."""
        if self._lm is None or self._lm[0] is not engine.model:
            from lm_eval.models.huggingface import HFLM

            device = str(next(engine.model.parameters()).device)
            self._lm = (engine.model, HFLM(pretrained=engine.model, tokenizer=engine.tokenizer,
                                           batch_size=self.config.batch_sequences, device=device))
        return self._lm[1]

    def evaluate_task(self, engine, examples) -> dict[str, Any]:
        """lm-eval's result dict (log_samples on) for `examples` as the task's documents: its
        evaluate() with the task settings the lm_eval command gives (no few-shot unless the task
        says, lm-eval's few-shot seed), without the command's environment report per call."""
        require_lm_eval()
        import datasets
        from lm_eval.defaults import DEFAULT_OTHER_SEED
        from lm_eval.evaluator import evaluate
        from lm_eval.tasks import TaskManager

        cfg = self.task_config()
        rows = [dict(ex) for ex in examples]
        cfg.update(custom_dataset=lambda **_: datasets.DatasetDict({SPLIT: datasets.Dataset.from_list(rows)}),
                   test_split=SPLIT)
        chat = engine.uses_chat_template()
        logger = logging.getLogger("lm_eval")
        level = logger.level
        logger.setLevel(logging.ERROR)  # its per-call notes (default aggregations, custom dataset) repeat per particle
        try:
            loaded = TaskManager(include_defaults=False).load([cfg])
            for task in loaded["tasks"].values():
                if task.get_config("num_fewshot") is None:
                    task.set_config(key="num_fewshot", value=0)
                task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)
            return evaluate(self.lm(engine), loaded, bootstrap_iters=0, log_samples=True,
                            system_instruction=self.config.system_prompt, apply_chat_template=chat,
                            fewshot_as_multiturn=chat)
        finally:
            logger.setLevel(level)

    def score_with(self, engine, examples, bound=None) -> Score:
        cfg = self.task_config()
        metric, filt = self.metric_and_filter(cfg)
        out = self.evaluate_task(engine, examples)
        samples = sorted((s for s in out["samples"][cfg["task"]] if s["filter"] == filt), key=lambda s: s["doc_id"])
        marks = [float(s[metric]) for s in samples]
        if len(marks) != len(examples):
            raise UserError("utility.task", f"lm-eval scored {len(marks)} of {len(examples)} documents under "
                                            f"metric {metric!r}, filter {filt!r}")
        return Score(out["results"][cfg["task"]][f"{metric},{filt}"], marks)
