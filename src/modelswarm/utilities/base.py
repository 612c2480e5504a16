"""What every utility shares: the registry, JSONL reading with file:line errors, prompts.

A utility is a class with two methods:
  load(path)                                 -> list of validated examples (coordinator, early)
  score(model, tokenizer, examples, bound)   -> Score (in a worker, on the composed model)
Register it with @register("name") in its own module under utilities/; that is all it takes
to make `utility.kind: name` work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..config import UtilityConfig
from ..errors import UserError

REGISTRY: dict[str, type["Utility"]] = {}


def register(kind: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        REGISTRY[kind] = cls
        cls.kind = kind
        return cls

    return wrap


@dataclass(frozen=True)
class Score:
    value: float  # higher is better
    per_example: Optional[list[float]] = None  # 1/0 correctness where the utility has it
    early_exit: bool = False  # value is an upper bound: scoring stopped below the bound
    answers: Optional[list[Any]] = None  # per-example answers, for the end-of-run ensemble vote


class Utility:
    kind = "?"

    def __init__(self, config: UtilityConfig):
        self.config = config

    def load(self, path: str | Path) -> list[dict[str, Any]]:
        raise NotImplementedError

    def score(self, model: torch.nn.Module, tokenizer: Any, examples: list[dict[str, Any]],
              bound: Optional[float] = None) -> Score:
        """The score; with a bound, scoring may stop once the score cannot reach it and
        return an upper bound instead (Score.early_exit). Ignoring the bound is correct."""
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, examples: list[dict[str, Any]],
                 bound: Optional[float] = None) -> Score:
        """score(), given the bound only with utility.early_exit on."""
        return self.score(model, tokenizer, examples, bound if self.config.early_exit else None)


class Tally:
    """Per-example 0/1 marks as they settle, in any order. With a bound, `hopeless` says when
    even every unsettled example right could not reach it: that upper bound is then exact."""

    def __init__(self, n: int, bound: Optional[float] = None):
        self.n, self.bound = n, bound
        self.marks: list[Optional[float]] = [None] * n
        self.answers: list[Any] = [None] * n
        self.right, self.settled = 0.0, 0

    def settle(self, k: int, mark: float, answer: Any = None) -> None:
        self.marks[k] = mark
        self.answers[k] = answer
        self.right += mark
        self.settled += 1

    def reachable(self) -> float:
        return (self.right + self.n - self.settled) / self.n

    def hopeless(self) -> bool:
        return self.bound is not None and self.settled < self.n and self.reachable() < self.bound

    def score(self) -> Score:
        if self.settled < self.n:
            return Score(self.reachable(), None, early_exit=True)
        answers = list(self.answers) if any(a is not None for a in self.answers) else None
        return Score(self.right / self.n, list(self.marks), answers=answers)


def read_jsonl(path: str | Path, max_examples: Optional[int] = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs; blank lines skipped; any malformed line is an error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "data file not found")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}", f"not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}", "each line must be a JSON object")
            rows.append((lineno, obj))
            if max_examples is not None and len(rows) >= max_examples:
                break
    if not rows:
        raise UserError(path, "no examples (the file is empty)")
    return rows


def require(obj: dict, key: str, kind: type | tuple, where: str) -> Any:
    if key not in obj:
        raise UserError(where, f"missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise UserError(where, f"field '{key}' must be {names}, got {value!r}")
    return value


def uses_chat_template(tokenizer: Any, config: UtilityConfig) -> bool:
    if config.chat_template == "off":
        return False
    has = bool(getattr(tokenizer, "chat_template", None))
    if config.chat_template == "on" and not has:
        raise UserError("utility.chat_template", "is 'on' but the tokenizer has no chat template")
    return has


def prompt_ids(tokenizer: Any, text: str, config: UtilityConfig) -> list[int]:
    """Token ids of a prompt, through the chat template when there is one."""
    if uses_chat_template(tokenizer, config):
        messages = ([{"role": "system", "content": config.system_prompt}] if config.system_prompt else [])
        messages.append({"role": "user", "content": text})
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(rendered, add_special_tokens=False)["input_ids"]
    if config.system_prompt:
        text = config.system_prompt + "\n" + text
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers *ForCausalLM inside a PeftModel (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder stack, lm_head): scoring runs the stack, then the head only where needed."""
    lm = causal_lm(model)
    return getattr(lm, lm.base_model_prefix), lm.get_output_embeddings()


def length_batches(lengths: list[int], config: UtilityConfig) -> list[list[int]]:
    """Indices in batches of similar length, longest first: at most batch_size sequences and,
    with batch_tokens set, at most that many padded tokens (a batch holds one sequence at least)."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batches, start = [], 0
    while start < len(order):
        size = config.batch_size
        if config.batch_tokens is not None:  # the first is the longest: its length is the width
            size = max(1, min(size, config.batch_tokens // max(1, lengths[order[start]])))
        batches.append(order[start:start + size])
        start += size
    return batches


def shares_prefixes(model: torch.nn.Module, config: UtilityConfig) -> bool:
    """Score through the prompts' prefix tree (prefix_tree.py)? Asked for, and the model's
    attention takes the tree's custom mask."""
    from .prefix_tree import supports_tree_attention

    return config.prefix_sharing and supports_tree_attention(causal_lm(model))


def tree_cap(config: UtilityConfig) -> int:
    """Nodes per row of a prefix tree (prefix_tree.py): batch_tokens when set, else 256,
    about where the row's dense attention starts to cost more than sharing saves."""
    return config.batch_tokens or 256


def pad_id(tokenizer: Any) -> int:
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id
    return int(pid if pid is not None else 0)
