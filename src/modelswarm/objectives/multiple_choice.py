"""multiple_choice: pick the choice with the highest length-normalised log-likelihood.

JSONL lines: {"question": str, "choices": [str, ...], "answer": int (index into choices)}.
Every (question, choice) pair is one sequence, scored by the engine's log-likelihood
(engine/loglik.py: with utility.prefix_sharing a question is computed once for all its
choices).

With `scoring: generate` (the official rule, evaluate.py `evaluate` with eval_type
"multiple_choice") the model instead answers a prompt that lists lettered options:
greedy generation of max_new_tokens (the official 10), then `parse_choice`, the official
`multiple_choice_answer_parsing`. The prompt is the line's "prompt" when it has one
(`modelswarm data import-official` writes the official prompt there), else the official
`multiple_choice_prompt` built from "question", "choices" and "labels" (default A, B, C, ...).
"""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Iterator, Literal, Optional, Sequence

from pydantic import Field

from ..errors import UserError
from .official_data import official_mc_prompt
from .base import Score, Tally, Utility, UtilitySection, kind_key
from .data import read_jsonl, require


# how far into the output, from either end, the official parser looks for an option key
PARSE_WINDOW = 5


def parse_choice(labels: Sequence[str], choices: Sequence[str], output: str) -> Optional[int]:
    """The official `multiple_choice_answer_parsing` (evaluate.py): the first option key
    (in option order) within the first 5 characters of the stripped output; else within
    its last 5 ("The answer is A."); else the first option whose text, lower-cased, is in
    the lower-cased output; else no answer (None; the official "Z", always wrong).
    Case-sensitive for keys, as the official one is."""
    output = output.strip()
    for window in (output[:PARSE_WINDOW], output[-PARSE_WINDOW:]):
        for k, key in enumerate(labels):
            if key in window:
                return k
    for k, text in enumerate(choices):
        if text.lower() in output.lower():
            return k
    return None


def default_labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])


class MultipleChoiceConfig(UtilitySection):
    kind: Literal["multiple_choice"] = kind_key("multiple_choice")
    scoring: Literal["loglik", "generate"] = Field(
        "loglik", description="`loglik`: the choice with the highest length-normalised log-likelihood; "
        "`generate` (the official rule): greedy generation on a prompt that lists lettered options, then the "
        "official letter parser (first option key in the first 5 characters, then in the last 5, then the "
        "option text, else no answer)")

    def secondary_score(self) -> Optional[str]:
        if self.scoring == "generate":
            return None
        return "the gold choice's margin: its mean log-probability minus the best other choice's, averaged"


class MultipleChoice(Utility):
    Config = MultipleChoiceConfig

    def load(self, path):
        examples = []
        for lineno, obj in read_jsonl(path):
            where = f"{path}:{lineno}"
            if not require(obj, "question", str, where).strip():
                raise UserError(where, "field 'question' is empty")
            choices = require(obj, "choices", list, where)
            if len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
                raise UserError(where, "field 'choices' must be a list of at least 2 non-empty strings")
            answer = require(obj, "answer", int, where)
            if not 0 <= answer < len(choices):
                raise UserError(where, f"answer {answer} is outside the {len(choices)} choices")
            if self.config.scoring == "generate":
                obj = {**obj, "labels": self._labels(obj, where)}
                obj["prompt"] = self._prompt(obj, where)
            examples.append(obj)
        return examples

    def _labels(self, obj: dict, where: str) -> list[str]:
        n = len(obj["choices"])
        if "labels" not in obj:
            if n > 26:
                raise UserError(where, "scoring 'generate' labels options A-Z: give 'labels' for more than 26 choices")
            return default_labels(n)
        labels = obj["labels"]
        if (not isinstance(labels, list) or len(labels) != n or len(set(labels)) != n
                or not all(isinstance(x, str) and x.strip() for x in labels)):
            raise UserError(where, f"field 'labels' must be {n} distinct non-empty strings, one per choice")
        return labels

    def _prompt(self, obj: dict, where: str) -> str:
        if "prompt" not in obj:
            return official_mc_prompt(obj["question"], dict(zip(obj["labels"], obj["choices"])))
        prompt = require(obj, "prompt", str, where)
        missing = [x for x in obj["labels"] if x not in prompt]
        if missing:
            raise UserError(where, f"scoring 'generate' needs a prompt that lists the lettered options; "
                                   f"'prompt' does not mention {missing}")
        return prompt

    def generate(self, model, tokenizer, examples) -> list[str]:
        """`scoring: generate`: each example's generated answer text (stripped)."""
        return self.generated(self.engine(model, tokenizer), examples)

    def generated(self, engine, examples) -> list[str]:
        prompts = [engine.prompt_ids(ex["prompt"]) for ex in examples]
        return engine.generate_texts(prompts, max_new_tokens=self.config.max_new_tokens)

    def sequences(self, engine, examples) -> list[tuple[int, int, list[int], list[int]]]:
        """(example index, choice index, prompt ids, choice ids) for every pair."""
        seqs = []
        for i, ex in enumerate(examples):
            p_ids = engine.prompt_ids(ex["question"])
            for c, choice in enumerate(ex["choices"]):
                seqs.append((i, c, p_ids, engine.continuation_ids(ex["question"], choice)))
        return seqs

    def scored(self, engine, examples) -> Iterator[tuple[int, list[float]]]:
        """(example index, mean log-probability of each choice's tokens) as each is complete."""
        return engine.loglik(self.sequences(engine, examples))

    def choice_scores(self, model, tokenizer, examples) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in examples]
        for i, scores in self.scored(self.engine(model, tokenizer), examples):
            out[i] = scores
        return out

    def score_with(self, engine, examples, bound=None) -> Score:
        tally = Tally(len(examples), bound)
        if self.config.scoring == "generate":
            for i, (ex, text) in enumerate(zip(examples, self.generated(engine, examples))):
                choice = parse_choice(ex["labels"], ex["choices"], text)
                # no answer votes as -1 in the ensemble: never a gold index
                tally.settle(i, float(choice == ex["answer"]), answer=-1 if choice is None else choice)
            return tally.score()
        margin = 0.0
        for i, s in self.scored(engine, examples):
            choice = max(range(len(s)), key=s.__getitem__)
            gold = examples[i]["answer"]
            tally.settle(i, float(choice == gold), answer=choice)
            margin += s[gold] - max(v for c, v in enumerate(s) if c != gold)
            if tally.hopeless():
                break
        score = tally.score()
        if self.config.tie_break and not score.early_exit:
            # positive where the gold choice wins: how far each mark is from flipping
            score = replace(score, secondary=margin / len(examples))
        return score
