"""The scoring engine against plain `generate`, one prompt at a time, on long and short prompts.

    python bench/long_prompts.py [--long 5] [--short 24] [--repeat 1]

SmolLM2-135M-Instruct, float32, one thread. long: NLGraph-like prompts (an undirected
graph's edge list and a question, through the chat template), about 700 tokens, one in
five about 1,400, as the official NLGraph data has them. short: the demo's validation
prompts (no template). Both run to EOS or `max_new_tokens` (exact_match's default, 16)
with no early stop, so every way generates the same tokens (checked). The engine runs with
EngineConfig's defaults, with prefix sharing and without. Prints seconds and the ratio to
plain generate (lower is better; 1.0 = as fast).
"""

from __future__ import annotations

import argparse
import json
import os
import random

from _common import ROOT, Timer

MAX_NEW_TOKENS = 16  # ExactMatchConfig's default (objectives/base.py)


def graph_prompt(rng: random.Random, tokenizer, target: int) -> str:
    """An NLGraph-style connectivity question whose chat-templated prompt is about `target` tokens."""
    nodes = max(10, target // 25)
    edges: list[str] = []
    while True:
        a, b = rng.sample(range(nodes), 2)
        edges.append(f"({a},{b})")
        text = ("Determine if there is a path between two nodes in the graph. Note that (i,j) means that node i "
                f"and node j are connected with an undirected edge.\nGraph: {' '.join(edges)}\n"
                f"Q: Is there a path between node {rng.randrange(nodes)} and node {rng.randrange(nodes)}?\nA:")
        if len(edges) % 8 == 0 and len(templated(tokenizer, text)) >= target:
            return text


def templated(tokenizer, text: str) -> list[int]:
    from modelswarm.engine.prompts import prompt_ids
    from modelswarm.sections import EngineConfig

    return prompt_ids(tokenizer, text, EngineConfig(chat_template="on"))


def naive(model, tokenizer, prompts: list[list[int]]) -> list[list[int]]:
    import torch
    from transformers import GenerationConfig

    gen = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.eos_token_id)
    out = []
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen)[0, len(p):]
            new = new.tolist()
            out.append(new[:new.index(tokenizer.eos_token_id) + 1] if tokenizer.eos_token_id in new else new)
    return out


def engine_ids(model, tokenizer, prompts: list[list[int]], sharing: bool) -> list[list[int]]:
    from modelswarm.engine.engine import Engine
    from modelswarm.sections import EngineConfig

    engine = Engine(model, tokenizer, EngineConfig(prefix_sharing=sharing))
    out: list[list[int]] = [[] for _ in prompts]
    for k, ids in engine.generate_ids(prompts, max_new_tokens=MAX_NEW_TOKENS):
        out[k] = list(ids)
    return out


def case(model, tokenizer, prompts: list[list[int]], repeat: int) -> dict:
    ways = {"generate": lambda: naive(model, tokenizer, prompts),
            "engine_prefix_sharing": lambda: engine_ids(model, tokenizer, prompts, True),
            "engine_padded": lambda: engine_ids(model, tokenizer, prompts, False)}
    seconds, outputs = {name: float("inf") for name in ways}, {}
    for _ in range(repeat):  # rounds over the ways, so a burst of load on this shared machine hits each alike
        for name, run in ways.items():
            with Timer() as t:
                outputs[name] = run()
            seconds[name] = min(seconds[name], t.seconds)
    lengths = [len(p) for p in prompts]
    return {
        "prompts": len(prompts), "prompt_tokens_mean": round(sum(lengths) / len(lengths)), "prompt_tokens_max": max(lengths),
        "generated_tokens": sum(len(o) for o in outputs["generate"]),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "ratio_to_generate": {k: round(v / seconds["generate"], 2) for k, v in seconds.items() if k != "generate"},
        "same_tokens": {k: outputs[k] == outputs["generate"] for k in outputs if k != "generate"},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=int, default=5, help="long prompts")
    ap.add_argument("--short", type=int, default=24, help="short prompts (demo validation set)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over the ways; each way's fastest counts")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modelswarm.demo.smollm import ensure_base
    from modelswarm.objectives.data import read_jsonl

    torch.set_num_threads(1)
    os.chdir(ROOT)
    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    rng = random.Random(0)
    targets = [1400 if k % 5 == 4 else rng.randrange(600, 800) for k in range(args.long)]
    long = [templated(tokenizer, graph_prompt(rng, tokenizer, n)) for n in targets]
    demo = [obj["prompt"] for _, obj in read_jsonl(ROOT / "experts/demo/data/val.jsonl")][:args.short]
    short = [tokenizer(p)["input_ids"] for p in demo]
    print(json.dumps({"model": "SmolLM2-135M-Instruct", "dtype": "float32", "threads": 1,
                      "max_new_tokens": MAX_NEW_TOKENS, "loadavg": os.getloadavg(),
                      "long": case(model, tokenizer, long, args.repeat) if long else None,
                      "short": case(model, tokenizer, short, args.repeat) if short else None}, indent=2))


if __name__ == "__main__":
    main()
