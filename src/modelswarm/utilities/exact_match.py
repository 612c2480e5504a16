"""exact_match: greedy generation, strictly normalised, compared for equality.

JSONL lines: {"prompt": str, "answer": str or number}. Prompts are left-padded and batched,
generation is greedy with the KV cache and stops at EOS. The normaliser only folds case,
whitespace, surrounding quotes and a final period, and keeps the first line: "15" does not
match "150", and an answer buried in a sentence does not count.
"""

from __future__ import annotations

import re

import torch
from transformers import GenerationConfig

from ..errors import UserError
from .base import Score, Utility, pad_id, prompt_ids, read_jsonl, register, require


def normalise(text: str) -> str:
    text = text.strip().split("\n", 1)[0].strip()
    text = re.sub(r"\s+", " ", text).lower()
    text = text.strip("\"'`")
    return text.rstrip(".").strip()


@register("exact_match")
class ExactMatch(Utility):
    def load(self, path):
        examples = []
        for lineno, obj in read_jsonl(path, self.config.max_examples):
            where = f"{path}:{lineno}"
            require(obj, "prompt", str, where)
            answer = require(obj, "answer", (str, int, float), where)
            if not normalise(str(answer)):
                raise UserError(where, "field 'answer' is empty after normalisation")
            examples.append({**obj, "answer": str(answer)})  # extra fields (e.g. task) ride along
        return examples

    @torch.inference_mode()
    def generate(self, model, tokenizer, examples) -> list[str]:
        encoded = [prompt_ids(tokenizer, ex["prompt"], self.config) for ex in examples]
        device = next(model.parameters()).device
        pid = pad_id(tokenizer)
        # only the first line is compared, so a newline ends an answer as surely as EOS does
        stops = [tokenizer.eos_token_id]
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
        if len(newline) == 1:
            stops.append(newline[0])
        gen = GenerationConfig(
            max_new_tokens=self.config.max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=pid, eos_token_id=stops,
        )
        outputs = [""] * len(examples)
        order = sorted(range(len(encoded)), key=lambda k: -len(encoded[k]))
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            width = max(len(encoded[k]) for k in idx)
            ids = torch.full((len(idx), width), pid, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for b, k in enumerate(idx):  # left padding: generation continues from the last column
                ids[b, width - len(encoded[k]):] = torch.tensor(encoded[k])
                mask[b, width - len(encoded[k]):] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gen)
            for b, k in enumerate(idx):
                outputs[k] = tokenizer.decode(out[b, width:], skip_special_tokens=True)
        return outputs

    def score(self, model, tokenizer, examples) -> Score:
        texts = self.generate(model, tokenizer, examples)
        correct = [float(normalise(t) == normalise(ex["answer"])) for t, ex in zip(texts, examples)]
        return Score(sum(correct) / len(correct), correct)
