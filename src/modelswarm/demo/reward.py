"""An offline reward model for the reward_model example: SmolLM2-135M-Instruct as a yes/no probe.

`python -m modelswarm.demo.reward [OUT]` (default .cache/SmolLM2-135M-yes-reward) writes a
LlamaForSequenceClassification with one logit: the demo base model's decoder, and a score
head that is the LM head's "Yes" row minus its "No" row. Its tokenizer's chat template puts
the (prompt, reply) pair in a conversation and asks "Is the assistant's reply correct?
Answer Yes or No." as the last turn, so the reward is the model's log-odds of answering Yes
(log p(Yes) - log p(No), both as the next token). It is a zero-shot judgement by a 135M
model: cheap, offline, loadable with AutoModelForSequenceClassification like a real reward
model, and noisy. Nothing is downloaded: it reads the converted base in .cache/.
"""

from __future__ import annotations

import sys
from pathlib import Path

QUESTION = "Is the assistant's reply correct? Answer Yes or No."
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "<|im_start|>user\n" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n")


def build(base: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(base)
    lm = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = lm.config
    cfg.num_labels = 1
    cfg.architectures = ["LlamaForSequenceClassification"]
    cfg.pad_token_id = tok.pad_token_id
    rm = LlamaForSequenceClassification(cfg)
    rm.model.load_state_dict(lm.model.state_dict())
    yes, no = (tok(w, add_special_tokens=False)["input_ids"] for w in ("Yes", "No"))
    assert len(yes) == len(no) == 1, "Yes and No must be single tokens"
    head = lm.get_output_embeddings().weight
    with torch.no_grad():
        rm.score.weight.copy_((head[yes[0]] - head[no[0]])[None, :])
    out.mkdir(parents=True, exist_ok=True)
    rm.save_pretrained(out)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(out)
    return out


if __name__ == "__main__":
    from .smollm import ensure_base

    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/SmolLM2-135M-yes-reward")
    print(build(Path(ensure_base()), target))
