"""A tiny, fully local world for tests, benchmarks and the tiny config.

A randomly initialised 2-layer Llama (hidden 32) with a character-level tokenizer, two
digit skills and LoRA experts fine-tuned on them in seconds:
  up:   "3^" -> "4"   (next digit, mod 10)
  down: "3v" -> "2"   (previous digit, mod 10)
  same: "3=" -> "3"
Validation mixes up and down, so no single specialist is best at it. Everything is
seeded; nothing touches the network.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable

import torch

CHARS = [chr(c) for c in range(32, 127)] + ["\n"]
SKILLS = {
    "up": ("^", lambda d: (d + 1) % 10),
    "down": ("v", lambda d: (d - 1) % 10),
    "same": ("=", lambda d: d),
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_tokenizer(out_dir: Path, chat_template: str | None = None):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(out_dir)
    return fast


def make_base(out_dir: Path, hidden: int = 32, layers: int = 2, seed: int = 0, chat_template: str | None = None) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tok = make_tokenizer(out_dir, chat_template)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )
    LlamaForCausalLM(cfg).save_pretrained(out_dir)
    return out_dir


def skill_examples(skill: str, n: int, seed: int) -> list[dict]:
    """Multiple-choice examples of one skill: {"question", "choices", "answer"}."""
    op, fn = SKILLS[skill]
    rng = random.Random(f"{skill}-{seed}")
    out = []
    for _ in range(n):
        d = rng.randrange(10)
        right = str(fn(d))
        wrong = rng.sample([str(x) for x in range(10) if str(x) != right], 2)
        choices = [right] + wrong
        rng.shuffle(choices)
        out.append({"question": f"{d}{op}", "choices": choices, "answer": choices.index(right)})
    return out


def write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train_lora(base_dir: Path, out_dir: Path, skills: list[str], steps: int = 300, rank: int = 4,
               lr: float = 2e-2, seed: int = 0) -> Path:
    """Fine-tune a LoRA adapter on the answer tokens of the given skills (all 10 digits),
    with the one trainer (train.py) and its tiny recipe: the whole set as one batch."""
    from .train import TINY, replace, train_lora as train

    pairs = [(f"{d}{SKILLS[s][0]}", str(SKILLS[s][1](d))) for s in skills for d in range(10)]
    recipe = replace(TINY, steps=steps, rank=rank, alpha=2 * rank, lr=lr, seed=seed, targets=tuple(LORA_TARGETS))
    train(base_dir, pairs, out_dir, recipe)
    return Path(out_dir)


def build_world(root: Path, n_val: int = 60, n_test: int = 120, steps: int = 300) -> dict[str, Path]:
    """base_model/, lora/{up,down,same}, data/{val,test}.jsonl under root."""
    root = Path(root)
    base = make_base(root / "base_model")
    lora = root / "lora"
    # one init seed for all: like experts fine-tuned from a shared recipe, their A matrices
    # start equal, so combining A and B separately (the paper's way) stays meaningful
    for skill in ("up", "down", "same"):
        train_lora(base, lora / skill, [skill], steps=steps, seed=0)
    val = [ex for s in ("up", "down") for ex in skill_examples(s, n_val // 2, seed=10)]
    test = [ex for s in ("up", "down") for ex in skill_examples(s, n_test // 2, seed=20)]
    random.Random(0).shuffle(val)
    random.Random(1).shuffle(test)
    write_jsonl(root / "data" / "val.jsonl", val)
    write_jsonl(root / "data" / "test.jsonl", test)
    return {"base": base, "experts": lora, "val": root / "data" / "val.jsonl", "test": root / "data" / "test.jsonl"}
