"""exact_match: greedy generation, strictly normalised, compared for equality.

JSONL lines: {"prompt": str, "answer": str or number}. Prompts are left-padded and batched,
generation is greedy with the KV cache (see scoring/greedy.py) and stops at EOS or a newline. The
normaliser only folds case, whitespace, surrounding quotes and a final period, and keeps the
first line: "15" does not match "150", and an answer buried in a sentence does not count.

Scoring stops generating for a row as soon as its text can no longer normalise to the
answer ("8" when the answer is "92"), which is most rows after the first token. This never
changes a mark: `may_still_match` only says no when no continuation could match.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..errors import UserError
from ..scoring.batching import length_batches, pad_id, shares_prefixes, tree_cap
from ..scoring.greedy import greedy_decode, tree_greedy_decode
from ..scoring.prompts import prompt_ids
from .base import Score, Tally, Utility, register
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


@register("exact_match")
class ExactMatch(Utility):
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
        """(example index, generated text) as each is final; with prune, rows stop once their
        mark is settled (their text is then cut short, the mark is not affected)."""
        stops = {tokenizer.eos_token_id}
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
        if len(newline) == 1:  # only the first line is compared: a newline ends an answer as EOS does
            stops.add(newline[0])

        def decode(ids):
            return tokenizer.decode(ids, skip_special_tokens=True)

        needs_more = None
        # the prefix test assumes decode(prefix) is a prefix of decode(all); space clean-up
        # ("a ." -> "a.") breaks that, so such tokenizers generate every row to the end
        if prune and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
            answers = [normalise(ex["answer"]) for ex in examples]

            def needs_more(k, ids):
                text = decode(ids)
                return not line_complete(text) and may_still_match(text, answers[k])

        cfg = self.config
        prompts = [prompt_ids(tokenizer, ex["prompt"], cfg) for ex in examples]
        common = dict(pad_id=pad_id(tokenizer), stops=stops, max_new_tokens=cfg.max_new_tokens, needs_more=needs_more)
        if shares_prefixes(model, cfg):
            finished = tree_greedy_decode(model, prompts, lambda lengths: length_batches(lengths, cfg),
                                          cap=tree_cap(cfg), decode_rows=cfg.decode_rows, **common)
        else:
            finished = greedy_decode(model, prompts, length_batches([len(p) for p in prompts], cfg), **common)
        for k, ids in finished:
            yield k, decode(ids)

    def generate(self, model, tokenizer, examples) -> list[str]:
        """The generated text per example, up to the first stop or max_new_tokens."""
        texts = [""] * len(examples)
        for k, text in self.decoded(model, tokenizer, examples):
            texts[k] = text
        return texts

    def score(self, model, tokenizer, examples, bound=None) -> Score:
        answers = [normalise(ex["answer"]) for ex in examples]
        tally = Tally(len(examples), bound)
        for k, text in self.decoded(model, tokenizer, examples, prune=True):
            tally.settle(k, float(normalise(text) == answers[k]))
            if tally.hopeless():
                break
        return tally.score()
