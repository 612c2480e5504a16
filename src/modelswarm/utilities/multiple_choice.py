"""multiple_choice: pick the choice with the highest length-normalised log-likelihood.

JSONL lines: {"question": str, "choices": [str, ...], "answer": int (index into choices)}.
Every (question, choice) pair is one sequence. With utility.prefix_sharing (the default)
the sequences' token trie runs through the decoder, so a question is computed once for all
its choices (scoring/prefix_tree.py); without, each sequence is a right-padded row, batched by
length. Either way the LM head is applied only at the positions that predict choice tokens
(a 49k-vocab head on every position would dominate).

With `scoring: generate` (the official rule, evaluate.py `evaluate` with eval_type
"multiple_choice") the model instead answers a prompt that lists lettered options:
greedy generation of max_new_tokens (the official 10), then `parse_choice`, the official
`multiple_choice_answer_parsing`. The prompt is the line's "prompt" when it has one
(`modelswarm data import-official` writes the official prompt there), else the official
`multiple_choice_prompt` built from "question", "choices" and "labels" (default A, B, C, ...).
"""

from __future__ import annotations

import string
from collections import defaultdict
from typing import Iterator, Literal, Optional, Sequence

import torch
from pydantic import Field

from ..config import UtilityParams
from ..errors import UserError
from ..official_data import official_mc_prompt
from ..scoring.generate import generate_texts
from ..scoring.batching import length_batches, pad_id, shares_prefixes, tree_cap
from ..scoring.model_parts import backbone_and_head
from ..scoring.prefix_tree import PrefixForest, tree_inputs
from ..scoring.prompts import prompt_ids, uses_chat_template
from .base import Score, Tally, Utility, register
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


@register("multiple_choice")
class MultipleChoice(Utility):
    class Params(UtilityParams):
        scoring: Literal["loglik", "generate"] = Field(
            "loglik", description="`loglik`: the choice with the highest length-normalised log-likelihood; "
            "`generate` (the official rule): greedy generation on a prompt that lists lettered options, then the "
            "official letter parser (first option key in the first 5 characters, then in the last 5, then the "
            "option text, else no answer)")

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
            if self.params.scoring == "generate":
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
        prompts = [prompt_ids(tokenizer, ex["prompt"], self.config) for ex in examples]
        return generate_texts(model, tokenizer, prompts, self.config, max_new_tokens=self.config.max_new_tokens)

    def sequences(self, tokenizer, examples) -> list[tuple[int, int, list[int], list[int]]]:
        """(example index, choice index, prompt ids, choice ids) for every pair."""
        chat = uses_chat_template(tokenizer, self.config)
        seqs = []
        for i, ex in enumerate(examples):
            p_ids = prompt_ids(tokenizer, ex["question"], self.config)
            for c, choice in enumerate(ex["choices"]):
                text = choice if chat or ex["question"][-1:].isspace() else " " + choice
                seqs.append((i, c, p_ids, tokenizer(text, add_special_tokens=False)["input_ids"]))
        return seqs

    @torch.inference_mode()
    def scored(self, model, tokenizer, examples) -> Iterator[tuple[int, list[float]]]:
        """(example index, mean log-probability of each choice's tokens) as each is complete."""
        seqs = self.sequences(tokenizer, examples)
        # (hidden position, target token) -> (example, choice) pairs whose log-likelihood it adds to
        if shares_prefixes(model, self.config):
            positions = _tree_positions(model, seqs, self.config, pad_id(tokenizer))
        else:
            positions = _padded_positions(model, seqs, self.config, pad_id(tokenizer))
        _, head = backbone_and_head(model)
        logprobs = [[[] for _ in ex["choices"]] for ex in examples]
        missing = [0] * len(examples)  # choice tokens not scored yet
        for i, _, _, c_ids in seqs:
            missing[i] += len(c_ids)
        step = self.config.head_rows  # the head's output is vocab-wide: a few rows at a time
        for hidden, wants in positions:
            for start in range(0, len(wants), step):
                lp = torch.log_softmax(head(hidden[start:start + step]).float(), dim=-1).cpu()
                for row, targets in enumerate(wants[start:start + step]):
                    yield from self._add(logprobs, missing, lp[row], targets)

    @staticmethod
    def _add(logprobs, missing, lp, targets) -> Iterator[tuple[int, list[float]]]:
        """Add one position's log-probabilities; yield the examples that are now complete."""
        for token, i, c in targets:
            logprobs[i][c].append(float(lp[token]))
            missing[i] -= 1
            if missing[i] == 0:
                yield i, [sum(v) / len(v) for v in logprobs[i]]

    def choice_scores(self, model, tokenizer, examples) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in examples]
        for i, scores in self.scored(model, tokenizer, examples):
            out[i] = scores
        return out

    def score(self, model, tokenizer, examples, bound=None) -> Score:
        tally = Tally(len(examples), bound)
        if self.params.scoring == "generate":
            for i, (ex, text) in enumerate(zip(examples, self.generate(model, tokenizer, examples))):
                choice = parse_choice(ex["labels"], ex["choices"], text)
                # no answer votes as -1 in the ensemble: never a gold index
                tally.settle(i, float(choice == ex["answer"]), answer=-1 if choice is None else choice)
            return tally.score()
        for i, s in self.scored(model, tokenizer, examples):
            choice = max(range(len(s)), key=s.__getitem__)
            tally.settle(i, float(choice == examples[i]["answer"]), answer=choice)
            if tally.hopeless():
                break
        return tally.score()


# Both yield, per forward pass, the hidden states at the positions that predict choice tokens
# and, for each of them, the (target token, example, choice) triples it scores.
Positions = Iterator[tuple[torch.Tensor, list[list[tuple[int, int, int]]]]]


@torch.inference_mode()
def _padded_positions(model, seqs, config, pid: int) -> Positions:
    """Each (question, choice) sequence on its own row, right-padded, batched by length."""
    backbone, _ = backbone_and_head(model)
    device = next(model.parameters()).device
    for idx in length_batches([len(p) + len(c) for _, _, p, c in seqs], config):
        batch = [seqs[k] for k in idx]
        width = max(len(p) + len(c) for _, _, p, c in batch)
        ids = torch.full((len(batch), width), pid, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, wants = [], [], []
        for b, (i, c, p, c_ids) in enumerate(batch):
            ids[b, :len(p) + len(c_ids)] = torch.tensor(p + c_ids)
            mask[b, :len(p) + len(c_ids)] = 1
            for t, token in enumerate(c_ids):  # hidden state at position j predicts token j+1
                rows.append(b)
                cols.append(len(p) - 1 + t)
                wants.append([(token, i, c)])
        hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        yield hidden[torch.tensor(rows), torch.tensor(cols)], wants


@torch.inference_mode()
def _tree_positions(model, seqs, config, pid: int) -> Positions:
    """The sequences' trie (scoring/prefix_tree.py): a question shared by its choices runs once, and a
    position that predicts several choices' tokens gets the LM head once."""
    backbone, _ = backbone_and_head(model)
    param = next(model.parameters())
    forest, wanted = PrefixForest(), defaultdict(list)
    for i, c, p, c_ids in seqs:
        nodes = forest.insert(p + c_ids)
        for t, token in enumerate(c_ids):
            wanted[nodes[len(p) - 1 + t]].append((token, i, c))
    rows = forest.rows(tree_cap(config))
    for batch in length_batches([len(r) for r in rows], config):
        part = [rows[k] for k in batch]
        picks = [(b, j, wanted.pop(n)) for b, row in enumerate(part) for j, n in enumerate(row) if n in wanted]
        if not picks:
            continue
        ids, positions, mask = tree_inputs(forest, part, pid, param.dtype, param.device)
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        yield hidden[[b for b, _, _ in picks], [j for _, j, _ in picks]], [w for _, _, w in picks]
