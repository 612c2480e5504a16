"""The one LoRA trainer: `modelswarm experts train`, the demo's and suite2's experts, and the
tiny test world's all come from here.

An expert learns to continue a prompt with its answer: the loss covers the answer tokens
(and, with `eos`, the EOS that ends them, so a trained expert answers and stops). All
experts of one swarm share rank, alpha, targets and the init seed: like adapters made by
one recipe, their A matrices start equal, which keeps the paper's A/B-wise combination
meaningful.

Two recipes are in use. The demo's (TrainRecipe's defaults): minibatches of 16 drawn in a
seeded shuffled order, AdamW, 10 warm-up steps then a linear decay, answers " <answer>" +
EOS. The tiny world's (TINY): the whole data set as one batch every step, Adam at a
constant rate, the bare answer token, no EOS; with it the tiny experts come out bit for bit
as they did before the two trainers were merged (the tests build them on every run).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import torch


@dataclass(frozen=True)
class TrainRecipe:
    steps: int = 150
    batch_size: Optional[int] = 16  # None: every example in every step, in data order
    lr: float = 3e-3
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    seed: int = 0  # LoRA init and data order
    threads: Optional[int] = 2  # torch threads (None: leave torch's setting)
    optimizer: str = "adamw"  # "adamw" (weight decay 0) or "adam"
    schedule: str = "warmup_linear"  # "warmup_linear" (10 steps up, then linearly to 0) or "constant"
    answer_prefix: str = " "  # put between prompt and answer
    eos: bool = True  # the answer ends with EOS, which is learned too


TINY = TrainRecipe(steps=300, batch_size=None, lr=2e-2, rank=4, alpha=8,
                   targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                   threads=None, optimizer="adam", schedule="constant", answer_prefix="", eos=False)


def read_pairs(files: Sequence[Path]) -> list[tuple[str, str]]:
    """(prompt, answer) pairs from JSONL files of {"prompt", "answer"}."""
    rows = []
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                rows.append((d["prompt"], str(d["answer"])))
    return rows


def train_lora(base_dir: Path, pairs: Sequence[tuple[str, str]], out_dir: Path,
               recipe: TrainRecipe = TrainRecipe(), progress: bool = False, label: str = "training") -> dict:
    """Fine-tune one LoRA adapter on (prompt, answer) pairs and save it to out_dir.

    progress: a rich progress bar with the step, the running loss and the time left."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0,
                                             target_modules=list(recipe.targets)))
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    encoded = []
    for prompt, answer in pairs:
        p = tok(prompt, add_special_tokens=True)["input_ids"]
        a = tok(recipe.answer_prefix + answer, add_special_tokens=False)["input_ids"] + ([eos] if recipe.eos else [])
        encoded.append((p, a))
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=recipe.lr)
    else:
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    if recipe.schedule == "warmup_linear":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / recipe.steps))
    else:
        sched = None
    rng = random.Random(recipe.seed)
    order: list[int] = []
    losses: list[float] = []
    bar = _bar(label, recipe.steps) if progress else None
    start = time.time()
    model.train()
    try:
        for step in range(recipe.steps):
            if recipe.batch_size is None:
                batch = encoded
            else:
                if len(order) < recipe.batch_size:
                    more = list(range(len(encoded)))
                    rng.shuffle(more)
                    order += more
                batch = [encoded[i] for i in order[:recipe.batch_size]]
                del order[:recipe.batch_size]
            ids, mask, labels = _collate(batch, pad)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
            if bar is not None:
                bar[0].update(bar[1], advance=1, loss=sum(losses[-10:]) / len(losses[-10:]))
    finally:
        if bar is not None:
            bar[0].stop()
    model.eval()
    model.save_pretrained(out_dir)
    tail = losses[-10:] or [math.nan]
    return {
        "examples": len(encoded),
        "recipe": {**asdict(recipe), "targets": list(recipe.targets)},
        "final_loss": round(sum(tail) / len(tail), 4),
        "train_seconds": round(time.time() - start, 1),
    }


def _collate(batch, pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and labels on the answer tokens only."""
    width = max(len(p) + len(a) for p, a in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for b, (p, a) in enumerate(batch):
        ids[b, :len(p) + len(a)] = torch.tensor(p + a)
        mask[b, :len(p) + len(a)] = 1
        labels[b, len(p):len(p) + len(a)] = torch.tensor(a)
    return ids, mask, labels


def _bar(label: str, steps: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TextColumn("left"),
                   TimeRemainingColumn())
    task = bar.add_task(label, total=steps, loss=math.nan)
    bar.start()
    return bar, task


def train_files(base_dir: Path, files: Sequence[Path], out_dir: Path, recipe: TrainRecipe = TrainRecipe(),
                progress: bool = False, label: Optional[str] = None) -> dict:
    """train_lora on the pairs of JSONL files; the result records which files."""
    info = train_lora(base_dir, read_pairs(files), out_dir, recipe, progress, label or Path(out_dir).name)
    return {"data": [str(f) for f in files], **info}


__all__ = ["TINY", "TrainRecipe", "read_pairs", "replace", "train_files", "train_lora"]
