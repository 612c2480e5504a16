"""multitask: several utilities at once, each part its own utility config and data file.

The paper's multi-task domains (official evaluate.py, `evaluate` with eval_type
"multitask": legal = hearsay + citation_prediction_classification, medical = medqa +
medmcqa, science = scifact + stem, culture = normad_country + normad_value) score the
harmonic mean of two accuracies. Here a multitask has any number of parts (2 or more), of
any kind but multitask, and `combine` says how their scores become one:

  harmonic  the official objective (`evaluate`, eval_type "multitask", two parts there):
            n * prod(s) / sum over i of prod(s_j, j != i), which for two parts is the
            official 2ab / (a + b) to the last bit; when every part scores 0 each counts
            as the official dummy 0.01 (utility 0.01), otherwise a part at or below 0
            makes it 0. So a particle with every part 0 ranks above one with a single
            part 0, as it does officially.
  mean      the arithmetic mean
  min       the worst part

Every part has its own `data` (and `test_data`: all parts or none). A part is named after
its task: its data file's stem, or the folder's name when the stem is a split (dev, val,
test, ...: `modelswarm data import-official` writes data/<task>/dev.jsonl); a repeated
name gets "-2", "-3". Per-part scores go to the live table, the journal (`parts`) and
summary.json. Examples of all parts are one list, each tagged with its part ("_part"), so
the per-example marks (and answers, when every part has them) are the parts' marks one
after the other: the correctness reports and the end-of-run ensemble work on them as on
a single task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal, Optional

from pydantic import Field, field_validator

from ..errors import UserError
from .base import Score, Utility, UtilitySection, kind_key

PART = "_part"  # the key that tags an example with its part's index
ALL_ZERO = 0.01  # the official dummy score of every part when all of them score 0


def combine(scores: list[float], how: str) -> float:
    """The parts' scores as one utility (see the module docstring)."""
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "min":
        return min(scores)
    if all(s == 0 for s in scores):
        scores = [ALL_ZERO] * len(scores)
    elif any(s <= 0 for s in scores):
        return 0.0
    others = [math.prod(scores[:i] + scores[i + 1:]) for i in range(len(scores))]
    return len(scores) * math.prod(scores) / sum(others)


# file stems that name a split, not a task: `data import-official` writes data/<task>/dev.jsonl
SPLIT_STEMS = {"dev", "val", "valid", "validation", "test", "train"}


def part_name(data: Optional[str], kind: str) -> str:
    """A part's task name: its data file's stem, or its folder's name when the stem names a split."""
    if not data:
        return kind
    path = Path(data)
    return path.parent.name if path.stem.lower() in SPLIT_STEMS and path.parent.name else path.stem


def part_names(parts: list) -> list[str]:
    names: list[str] = []
    for p in parts:
        stem = part_name(p.data, p.kind)
        name, k = stem, 1
        while name in names:
            k += 1
            name = f"{stem}-{k}"
        names.append(name)
    return names


class MultitaskConfig(UtilitySection):
    """`parts` are utility sections of any kind: `UtilityConfig`, the union of every kind, is
    named here and resolved by registry.py, which imports this module."""

    needs_data: ClassVar[bool] = False  # its parts bring the data

    kind: Literal["multitask"] = kind_key("multitask")
    parts: list[UtilityConfig] = Field(..., description="the parts: each a utility config "  # noqa: F821
                                       "(`kind`, `data`, `test_data` and that kind's keys), scored on its own data")
    combine: Literal["harmonic", "mean", "min"] = Field(
        "harmonic", description="how part scores become the utility: `harmonic` mean (the paper's multi-task "
        "objective, 0.01 when every part scores 0 as officially), `mean`, or `min` (the worst part)")

    @field_validator("parts")
    @classmethod
    def _plain_parts(cls, parts: list) -> list:
        if len(parts) < 2:
            raise ValueError(f"needs at least 2 parts, got {len(parts)}")
        out = []
        for i, p in enumerate(parts):
            if p.kind == "multitask":
                raise ValueError(f"part {i} is a multitask: parts cannot nest")
            if not p.data:
                raise ValueError(f"part {i} ({p.kind}) has no data")
            fix = {k: str(Path(v).expanduser().resolve()) for k in ("data", "test_data")
                   if (v := getattr(p, k)) is not None}
            out.append(p.replace(**fix))
        if len({p.test_data is None for p in out}) > 1:
            raise ValueError("either every part has test_data or none has")
        return out


class Multitask(Utility):
    Config = MultitaskConfig

    def __init__(self, config: MultitaskConfig, parts: list[Utility]):
        """parts: the utility of each of config.parts."""
        super().__init__(config)
        self.names = part_names(config.parts)
        self.part_utilities = parts

    @classmethod
    def build(cls, config, make) -> "Multitask":
        return cls(config, [make(p) for p in config.parts])

    def check(self) -> None:
        for i, u in enumerate(self.part_utilities):
            try:
                u.check()
            except UserError as exc:  # utility.reward_model -> utility.parts[1].reward_model
                if not exc.where.startswith("utility."):
                    raise
                raise UserError(f"utility.parts[{i}].{exc.where.removeprefix('utility.')}", exc.problem) from None

    def side_models(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, u in zip(self.names, self.part_utilities):
            out.update({f"{k} ({name})": v for k, v in u.side_models().items()})
        return out

    def load(self, path):
        raise UserError("utility.data", "a multitask has no data of its own: each part has its own")

    def load_split(self, split: str) -> Optional[list[dict]]:
        out = []
        for i, u in enumerate(self.part_utilities):
            examples = u.load_split(split)
            if examples is None:
                return None
            out += [{**ex, PART: i} for ex in examples]
        return out

    def score_with(self, engine, examples, bound=None) -> Score:
        groups: dict[int, list[int]] = {}
        for k, ex in enumerate(examples):
            groups.setdefault(ex[PART], []).append(k)
        parts, scores = {}, {}
        for i in sorted(groups):
            idx = groups[i]
            part = self.part_utilities[i]  # each part batches and renders prompts by its own keys
            scores[i] = part.score_with(engine.with_config(part.config.engine), [examples[k] for k in idx])
            parts[self.names[i]] = scores[i].value
        per_example = answers = None
        if all(s.per_example is not None for s in scores.values()):
            per_example = [0.0] * len(examples)
            for i, idx in groups.items():
                for k, m in zip(idx, scores[i].per_example):
                    per_example[k] = m
        if all(s.answers is not None for s in scores.values()):
            answers = [None] * len(examples)
            for i, idx in groups.items():
                for k, a in zip(idx, scores[i].answers):
                    answers[k] = a
        counts: dict[str, int] = {}
        for s in scores.values():
            for key, n in (s.counts or {}).items():
                counts[key] = counts.get(key, 0) + n
        return Score(combine(list(parts.values()), self.config.combine), per_example, answers=answers,
                     parts=parts, counts=counts or None)

