"""multiple_choice: pick the choice with the highest length-normalised log-likelihood.

JSONL lines: {"question": str, "choices": [str, ...], "answer": int (index into choices)}.
Every (question, choice) pair is one sequence; sequences are sorted by length and batched
with right padding, the decoder runs once per batch, and the LM head is applied only at the
positions that predict choice tokens (a 49k-vocab head on every position would dominate).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import UserError
from .base import Score, Utility, backbone_and_head, length_batches, pad_id, prompt_ids, read_jsonl, register, require, uses_chat_template


@register("multiple_choice")
class MultipleChoice(Utility):
    def load(self, path):
        examples = []
        for lineno, obj in read_jsonl(path, self.config.max_examples):
            where = f"{path}:{lineno}"
            require(obj, "question", str, where)
            choices = require(obj, "choices", list, where)
            if len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
                raise UserError(where, "field 'choices' must be a list of at least 2 non-empty strings")
            answer = require(obj, "answer", int, where)
            if not 0 <= answer < len(choices):
                raise UserError(where, f"answer {answer} is outside the {len(choices)} choices")
            examples.append(obj)
        return examples

    @torch.inference_mode()
    def choice_scores(self, model, tokenizer, examples) -> list[list[float]]:
        """Mean log-probability of each choice's tokens given the question."""
        chat = uses_chat_template(tokenizer, self.config)
        seqs = []  # (example index, choice index, prompt ids, continuation ids)
        for i, ex in enumerate(examples):
            p_ids = prompt_ids(tokenizer, ex["question"], self.config)
            for c, choice in enumerate(ex["choices"]):
                text = choice if chat or ex["question"][-1:].isspace() else " " + choice
                c_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                seqs.append((i, c, p_ids, c_ids))
        out = [[0.0] * len(ex["choices"]) for ex in examples]
        backbone, head = backbone_and_head(model)
        device = next(model.parameters()).device
        pid = pad_id(tokenizer)
        for idx in length_batches([len(p) + len(c) for _, _, p, c in seqs], self.config):
            batch = [seqs[k] for k in idx]
            width = max(len(p) + len(c) for _, _, p, c in batch)
            ids = torch.full((len(batch), width), pid, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            rows, cols, targets = [], [], []
            for b, (_, _, p, c) in enumerate(batch):
                seq = p + c
                ids[b, :len(seq)] = torch.tensor(seq)
                mask[b, :len(seq)] = 1
                for t in range(len(c)):  # hidden state at position j predicts token j+1
                    rows.append(b)
                    cols.append(len(p) - 1 + t)
                    targets.append(c[t])
            hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            picked = hidden[torch.tensor(rows), torch.tensor(cols)]
            logprobs = torch.log_softmax(head(picked).float(), dim=-1)
            token_lp = logprobs[torch.arange(len(targets)), torch.tensor(targets, device=logprobs.device)].cpu()
            pos = 0
            for i, c, _, c_ids in batch:
                out[i][c] = float(token_lp[pos:pos + len(c_ids)].mean())
                pos += len(c_ids)
        return out

    def score(self, model, tokenizer, examples) -> Score:
        scores = self.choice_scores(model, tokenizer, examples)
        correct = [float(max(range(len(s)), key=s.__getitem__) == ex["answer"]) for s, ex in zip(scores, examples)]
        return Score(sum(correct) / len(correct), correct)
