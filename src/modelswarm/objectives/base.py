"""What every utility shares: its section's common keys, the Utility class, the Score it
returns and the Tally of marks.

A utility kind is one module under objectives/ holding two classes:
  a config model, subclassing UtilitySection, with `kind: Literal["name"]` (kind_key) and
      the kind's own keys, each with a description: they are written under `utility:` next
      to the common keys;
  the utility, subclassing Utility, with `Config` set to that model and
      load(path)                          -> list of validated examples (run/prepare.py, before any worker starts)
      score_with(engine, examples, bound) -> Score (in a worker, on the composed model)
and one line in objectives/registry.py. A utility keeps data and marks only: the engine
(engine/engine.py) runs every model. Nothing here imports torch: a YAML is validated
without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

from pydantic import Field, ValidationError, model_validator

from ..sections import EngineConfig, Section

if TYPE_CHECKING:
    from ..engine.engine import Engine

KIND = "a registered utility (one file each under objectives/)"


class UtilityKeys(Section):
    """The keys every utility reads."""

    kind: str = Field(description=KIND)
    data: Optional[str] = Field(None, description="validation JSONL the search optimises (required, except "
                                "for kinds whose parts bring their own, like `multitask`)")
    test_data: Optional[str] = Field(None, description="held-out JSONL, scored for the best particle, the "
                                     "personal bests and the baselines at the end")
    max_examples: Optional[int] = Field(None, ge=1, description="use the first N validation examples "
                                        "(the test split is always scored whole)")
    max_new_tokens: int = Field(16, ge=1, description="generation budget per example (generation utilities)")
    early_exit: bool = Field(False, description="stop scoring a particle once it can no longer beat its "
                             "personal best (see \"Early exit\")")
    tie_break: bool = Field(False, description="also record a continuous secondary score with every evaluation "
                            "(exact_match: the gold answer's mean token log-probability; multiple_choice with "
                            "`scoring: loglik`: the gold choice's margin over the best other), which the swarm uses "
                            "only to order particles of equal score (see \"Ties on a plateau\"); the other "
                            "searches ignore it")


class UtilitySection(EngineConfig, UtilityKeys):
    """The `utility:` section: the common keys, then the engine's (EngineConfig), then a
    kind's own in its subclass. Flat in YAML, flat here."""

    needs_data: ClassVar[bool] = True  # False for kinds whose parts bring their own data files

    @model_validator(mode="before")
    @classmethod
    def _flat_with_data(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("params"), dict):
            # the config.yaml of an older run directory holds a multitask part's own keys under `params`
            data = {**data["params"], **{k: v for k, v in data.items() if k != "params"}}
        if cls.needs_data and isinstance(data, dict) and data.get("data") is None:
            raise ValidationError.from_exception_data(cls.__name__, [dict(type="missing", loc=("data",), input=data)])
        return data

    @model_validator(mode="after")
    def _tie_break_supported(self) -> "UtilitySection":
        if self.tie_break and self.secondary_score() is None:
            raise ValueError(f"tie_break: kind '{self.kind}' records no secondary score "
                             "(exact_match and multiple_choice with scoring loglik do)")
        return self

    def secondary_score(self) -> Optional[str]:
        """What this section's utility records as Score.secondary under tie_break (None: it
        records none); a kind that records one overrides this."""
        return None


def kind_key(name: str) -> Any:
    """The `kind` field of a kind's config model."""
    return Field(name, description=KIND)


@dataclass(frozen=True, slots=True)  # slots: the run's cache holds one per evaluation
class Score:
    value: float  # higher is better
    per_example: Optional[list[float]] = None  # 1/0 correctness, or each example's value (reward_model, llm_judge)
    early_exit: bool = False  # value is an upper bound: scoring stopped below the bound
    answers: Optional[list[Any]] = None  # per-example answers, for the end-of-run ensemble vote
    parts: Optional[dict[str, float]] = None  # per-part scores of a utility made of parts (multitask)
    counts: Optional[dict[str, int]] = None  # events worth a line in the journal (llm_judge: unparsable ratings)
    secondary: Optional[float] = None  # utility.tie_break: a continuous score that orders equal values (higher is better)


class Utility:
    Config: ClassVar[type[UtilitySection]] = UtilitySection

    def __init__(self, config: UtilitySection):
        self.config = config

    @classmethod
    def build(cls, config: UtilitySection, make: Callable[[UtilitySection], "Utility"]) -> "Utility":
        """The utility of `config`; make(section) builds any other kind's (a multitask's parts)."""
        return cls(config)

    @property
    def kind(self) -> str:
        return self.config.kind

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

    def score_with(self, engine: "Engine", examples: list[dict[str, Any]], bound: Optional[float] = None) -> Score:
        """The score; with a bound, scoring may stop once the score cannot reach it and
        return an upper bound instead (Score.early_exit). Ignoring the bound is correct."""
        raise NotImplementedError

    def evaluate_with(self, engine: "Engine", examples: list[dict[str, Any]], bound: Optional[float] = None) -> Score:
        """score_with(), given the bound only with utility.early_exit on."""
        return self.score_with(engine, examples, bound if self.config.early_exit else None)

    def engine(self, model: Any, tokenizer: Any) -> "Engine":
        """An engine over `model` with this utility's knobs (a worker makes one and keeps it)."""
        from ..engine.engine import Engine

        return Engine(model, tokenizer, self.config.engine)

    def score(self, model: Any, tokenizer: Any, examples: list[dict[str, Any]], bound: Optional[float] = None) -> Score:
        """score_with() on a fresh engine over `model` (side models load again)."""
        return self.score_with(self.engine(model, tokenizer), examples, bound)

    def evaluate(self, model: Any, tokenizer: Any, examples: list[dict[str, Any]],
                 bound: Optional[float] = None) -> Score:
        """evaluate_with() on a fresh engine over `model`."""
        return self.evaluate_with(self.engine(model, tokenizer), examples, bound)


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
