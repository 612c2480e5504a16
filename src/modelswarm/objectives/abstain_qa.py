"""abstain_qa: multiple-choice answers scored by effective reliability (AbstainQA).

The paper's AbstainQA task (official evaluate.py, `evaluate` with eval_type "AbstainQA";
the metric of arXiv:2402.00367). The data is multiple_choice's with `scoring: generate`
(a line's "prompt", or the official prompt built from "question", "choices", "labels"), and
each example is scored in two steps, as officially:

  1. answer: greedy generation of `max_new_tokens` (official 10) on the prompt, then the
     official letter parser (multiple_choice.parse_choice); right or wrong;
  2. self-reflection: greedy generation of `reflect_max_new_tokens` (official 10) on
       prompt + "\\nProposed answer: " + answer + "\\nIs the proposed answer true or
       false? Directly answer with true or false."
     the model abstains where its reply contains "false" (any case).

An example's mark is +1 (answered and right), -1 (answered and wrong) or 0 (abstained), and
the utility is their mean: the official `get_effective_reliability`, (right answered -
wrong answered) / all, in [-1, 1]. The official run uses no chat template: set
`chat_template: "off"`.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import Field

from .base import Score, UtilitySection, kind_key
from .multiple_choice import MultipleChoice, parse_choice

# the official self-reflection prompt, after the question's prompt and the model's answer
REFLECT = "\nProposed answer: {answer}\nIs the proposed answer true or false? Directly answer with true or false."


def reflection_prompt(prompt: str, answer: str) -> str:
    return prompt + REFLECT.format(answer=answer)


def abstains(reply: str) -> bool:
    """The official abstain decision: "false" anywhere in the reflection's reply."""
    return "false" in reply.lower()


def effective_reliability(correct: list[bool], abstain: list[bool]) -> float:
    """(answered and right - answered and wrong) / all examples."""
    return sum(0 if a else (1 if c else -1) for c, a in zip(correct, abstain)) / len(correct)


class AbstainQAConfig(UtilitySection):
    scoring: ClassVar[str] = "generate"  # the data is read as multiple_choice's `scoring: generate`

    kind: Literal["abstain_qa"] = kind_key("abstain_qa")
    reflect_max_new_tokens: int = Field(10, ge=1, description="tokens of the self-reflection reply, whose "
                                        "\"false\" means the model abstains (official: 10)")


class AbstainQA(MultipleChoice):
    Config = AbstainQAConfig

    def score_with(self, engine, examples, bound: Optional[float] = None) -> Score:
        answers = self.generated(engine, examples)
        picks = [parse_choice(ex["labels"], ex["choices"], text) for ex, text in zip(examples, answers)]
        correct = [p == ex["answer"] for p, ex in zip(picks, examples)]
        reflect = [engine.prompt_ids(reflection_prompt(ex["prompt"], text)) for ex, text in zip(examples, answers)]
        replies = engine.generate_texts(reflect, max_new_tokens=self.config.reflect_max_new_tokens)
        abstain = [abstains(r) for r in replies]
        marks = [0.0 if a else (1.0 if c else -1.0) for c, a in zip(correct, abstain)]
        return Score(effective_reliability(correct, abstain), marks,
                     counts={"abstained": sum(abstain)})
