"""`modelswarm experts train`: fine-tune a LoRA specialist on (prompt, answer) JSONL.

The loss covers the answer tokens and the EOS that ends them, so a trained expert answers
and stops (which also lets greedy generation stop early). All experts of one swarm share
the rank, alpha, targets and the init seed: like adapters made by one recipe, their A
matrices start equal, which keeps the paper's A/B-wise combination meaningful.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class TrainRecipe:
    steps: int = 150
    batch_size: int = 16
    lr: float = 3e-3
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    seed: int = 0  # LoRA init and data order
    threads: int = 2


def read_pairs(files: list[Path]) -> list[tuple[str, str]]:
    rows = []
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                rows.append((d["prompt"], str(d["answer"])))
    return rows


def train_expert(base_dir: Path, train_files: list[Path], out_dir: Path, recipe: TrainRecipe = TrainRecipe()) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0,
                                             target_modules=list(recipe.targets)))
    pairs = read_pairs(train_files)
    rng = random.Random(recipe.seed)
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    encoded = []
    for prompt, answer in pairs:
        p = tok(prompt, add_special_tokens=True)["input_ids"]
        a = tok(" " + answer, add_special_tokens=False)["input_ids"] + [eos]
        encoded.append((p, a))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / recipe.steps))
    model.train()
    order: list[int] = []
    losses = []
    start = time.time()
    for step in range(recipe.steps):
        if len(order) < recipe.batch_size:
            more = list(range(len(encoded)))
            rng.shuffle(more)
            order += more
        batch = [encoded[i] for i in order[:recipe.batch_size]]
        del order[:recipe.batch_size]
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for b, (p, a) in enumerate(batch):
            ids[b, :len(p) + len(a)] = torch.tensor(p + a)
            mask[b, :len(p) + len(a)] = 1
            labels[b, len(p):len(p) + len(a)] = torch.tensor(a)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    model.save_pretrained(out_dir)
    return {
        "data": [str(f) for f in train_files],
        "examples": len(pairs),
        "recipe": {**asdict(recipe), "targets": list(recipe.targets)},
        "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
        "train_seconds": round(time.time() - start, 1),
    }
