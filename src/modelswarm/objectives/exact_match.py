"""exact_match: greedy generation compared with the answer, by one of three rules (`match`).

JSONL lines: {"prompt": str, "answer": str or number}. The engine generates greedily,
batched and KV-cached (see engine/generate.py).

  first_line (default)  strict: the first line, normalised, equals the answer. The normaliser
      only folds case, whitespace, surrounding quotes and a final period: "15" does not match
      "150", and an answer buried in a sentence does not count. Generation stops at EOS or
      a newline, and for a row as soon as its text can no longer normalise to the answer
      ("8" when the answer is "92"), which never changes a mark (`may_still_match`).
  contains  the official rule (evaluate.py, `evaluate` with eval_type "exact_match":
      `question["answer"] in output`): the answer, case-sensitive, anywhere in the stripped
      output. Generation runs to EOS or max_new_tokens (newlines do not stop it), and a row
      stops as soon as the answer has appeared (its mark is then settled).
  last_words  the official GSM8k rule: `" ".join(output.split(" ")[-N:])`, then `contains`
      on that (N = `last_words`: 5 in the official `evaluate`, 10 in `evaluate_test`).
      The official run uses max_new_tokens 200 for GSM8k.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterator, Literal, Optional

from pydantic import Field

from ..errors import UserError
from .base import Score, Tally, Utility, UtilitySection, kind_key
from .data import read_jsonl, require

QUOTES = "\"'`"


def normalise(text: str) -> str:
    text = text.strip().split("\n", 1)[0].strip()
    text = re.sub(r"\s+", " ", text).lower()
    text = text.strip(QUOTES)
    return text.rstrip(".").strip()


def line_complete(text: str) -> bool:
    """Is the first line, all that normalise() keeps, complete? (leading blank lines do not count)"""
    return "\n" in text.lstrip()


def may_still_match(text: str, answer: str) -> bool:
    """Could some continuation of `text` normalise to `answer` (already normalised)?

    Mirrors normalise() on a prefix: the leading strip is settled once a character other
    than quotes and spaces has appeared; beyond the answer's length only what normalise
    strips from the end (quotes, periods, spaces) may follow."""
    if line_complete(text):
        return normalise(text) == answer
    if "\ufffd" in text:
        return True  # a multi-byte character cut between tokens: not judged yet
    head = re.sub(r"\s+", " ", text.lstrip()).lower().lstrip(QUOTES)
    if not head.strip():
        return True
    head = head.lstrip()
    n = min(len(head), len(answer))
    return head[:n] == answer[:n] and all(c in QUOTES + ". " for c in head[len(answer):])


def contains(answer: str, output: str) -> bool:
    """The official exact-match rule: the answer anywhere in the stripped output."""
    return answer in output.strip()


def last_words(output: str, n: int) -> str:
    """The official GSM8k cut: the last n space-separated words of the stripped output."""
    return " ".join(output.strip().split(" ")[-n:])


class ExactMatchConfig(UtilitySection):
    kind: Literal["exact_match"] = kind_key("exact_match")
    match: Literal["first_line", "contains", "last_words"] = Field(
        "first_line", description="how an output is compared with the answer: `first_line` (strict: the first "
        "line, normalised, equals it), `contains` (the official rule: the answer anywhere in the output), "
        "`last_words` (the official GSM8k rule: the answer among the last `last_words` words)")
    last_words: int = Field(5, ge=1, description="for `match: last_words`: how many words at the end of the "
                            "output are searched (official: 5 on dev, 10 on test)")

    def secondary_score(self) -> Optional[str]:
        return "the gold answer's mean token log-probability (teacher-forced, its end-of-text token included)"


class ExactMatch(Utility):
    Config = ExactMatchConfig

    def mark(self, answer: str, text: str) -> float:
        """1.0 when `text` (the generated output) matches `answer` (as loaded) under `match`."""
        match = self.config.match
        if match == "first_line":
            return float(normalise(text) == normalise(answer))
        if match == "last_words":
            text = last_words(text, self.config.last_words)
        return float(contains(answer, text))

    def load(self, path):
        examples = []
        for lineno, obj in read_jsonl(path):
            where = f"{path}:{lineno}"
            require(obj, "prompt", str, where)
            answer = require(obj, "answer", (str, int, float), where)
            if not normalise(str(answer)):
                raise UserError(where, "field 'answer' is empty after normalisation")
            examples.append({**obj, "answer": str(answer)})  # extra fields (e.g. task) ride along
        return examples

    def decoded(self, model, tokenizer, examples, prune: bool = False) -> Iterator[tuple[int, str]]:
        """decoded_with() on a fresh engine over `model`."""
        return self.decoded_with(self.engine(model, tokenizer), examples, prune)

    def decoded_with(self, engine, examples, prune: bool = False) -> Iterator[tuple[int, str]]:
        """(example index, generated text) as each is final; with prune, rows stop once their
        mark is settled (their text is then cut short, the mark is not affected)."""
        strict = self.config.match == "first_line"
        tokenizer = engine.tokenizer
        stops = {tokenizer.eos_token_id}
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
        if strict and len(newline) == 1:  # only the first line is compared: a newline ends an answer as EOS does
            stops.add(newline[0])

        def decode(ids):
            return tokenizer.decode(ids, skip_special_tokens=True)

        needs_more = None
        # the prefix test assumes decode(prefix) is a prefix of decode(all); space clean-up
        # ("a ." -> "a.") breaks that, so such tokenizers generate every row to the end
        if prune and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
            if strict:
                answers = [normalise(ex["answer"]) for ex in examples]

                def needs_more(k, ids):
                    text = decode(ids)
                    return not line_complete(text) and may_still_match(text, answers[k])
            elif self.config.match == "contains":
                def needs_more(k, ids):  # once the answer is in, it stays in
                    return not contains(examples[k]["answer"], decode(ids))

        prompts = [engine.prompt_ids(ex["prompt"]) for ex in examples]
        for k, ids in engine.generate_ids(prompts, max_new_tokens=self.config.max_new_tokens, stops=stops,
                                          needs_more=needs_more):
            yield k, decode(ids)

    def generate(self, model, tokenizer, examples) -> list[str]:
        """The generated text per example, up to the first stop or max_new_tokens."""
        texts = [""] * len(examples)
        for k, text in self.decoded(model, tokenizer, examples):
            texts[k] = text
        return texts

    def gold_logprobs(self, engine, examples) -> list[float]:
        """Each example's gold answer, teacher-forced after its prompt: the mean log-probability
        of its tokens and the end-of-text token. Continuous where the 0/1 mark is a step, so it
        can order particles of equal score (utility.tie_break)."""
        eos = engine.tokenizer.eos_token_id
        end = [] if eos is None else [eos]
        seqs = [(k, 0, engine.prompt_ids(ex["prompt"]), engine.continuation_ids(ex["prompt"], ex["answer"]) + end)
                for k, ex in enumerate(examples)]
        out = [0.0] * len(examples)
        for k, (lp,) in engine.loglik(seqs):
            out[k] = lp
        return out

    def score_with(self, engine, examples, bound=None) -> Score:
        tally = Tally(len(examples), bound)
        for k, text in self.decoded_with(engine, examples, prune=True):
            tally.settle(k, self.mark(examples[k]["answer"], text))
            if tally.hopeless():
                break
        score = tally.score()
        if self.config.tie_break and not score.early_exit:
            score = replace(score, secondary=sum(self.gold_logprobs(engine, examples)) / len(examples))
        return score
