"""What every utility shares: the registry, the Score it returns, and the Tally of marks.

A utility is a class with two methods:
  load(path)                                 -> list of validated examples (coordinator, early)
  score(model, tokenizer, examples, bound)   -> Score (in a worker, on the composed model)
and, when it has keys of its own, a nested `Params(UtilityParams)` declaring them (with a
description each): they are written under `utility:` next to the common keys, validated by
the config, and read as `self.params.<key>`. Register it with @register("name") in its own
module under utilities/; that is all it takes to make `utility.kind: name` work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..config import UtilityConfig, UtilityParams

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
    per_example: Optional[list[float]] = None  # 1/0 correctness, or each example's value (reward_model, llm_judge)
    early_exit: bool = False  # value is an upper bound: scoring stopped below the bound
    answers: Optional[list[Any]] = None  # per-example answers, for the end-of-run ensemble vote
    parts: Optional[dict[str, float]] = None  # per-part scores of a utility made of parts (multitask)
    counts: Optional[dict[str, int]] = None  # events worth a line in the journal (llm_judge: unparsable ratings)


class Utility:
    kind = "?"
    Params: type[UtilityParams] = UtilityParams  # the kind's own config keys
    needs_data = True  # False for kinds whose parts bring their own data files

    def __init__(self, config: UtilityConfig):
        self.config = config
        self.params = config.params

    def check(self) -> None:
        """Coordinator-side checks beyond the config's (a model directory, a template):
        raise UserError naming the key, before any worker starts. Loads no weights."""

    def side_models(self) -> dict[str, float]:
        """Models a worker holds besides the particle (a reward model, a judge): name -> MB."""
        return {}

    def load(self, path: str | Path) -> list[dict[str, Any]]:
        raise NotImplementedError

    def load_split(self, split: str) -> Optional[list[dict[str, Any]]]:
        """The examples of "val" (cut to max_examples) or "test" (whole); None if not configured."""
        path = self.config.data if split == "val" else self.config.test_data
        if path is None:
            return None
        examples = self.load(path)
        if split == "val" and self.config.max_examples is not None:
            examples = examples[: self.config.max_examples]
        return examples

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
