"""Every prompt must fit the base model's context, with room for what is scored after it.

Checked once, before any worker starts: a prompt that does not fit would otherwise fail
inside a worker on every particle (a position-embedding index error), or be silently cut.
Only the tokenizer and config.json are read, never the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError

# where config.json states the longest sequence, by model family
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(base_model: str | Path) -> Optional[int]:
    """The base model's context in tokens, or None where its config.json does not say."""
    try:
        cfg = json.loads((Path(base_model) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None  # check_against_base names a missing or broken config.json
    cfg = {**cfg.get("text_config", {}), **cfg}
    return next((int(cfg[k]) for k in CONTEXT_KEYS if isinstance(cfg.get(k), int)), None)


def room_after(example: dict[str, Any], utility: Any) -> int:
    """Tokens scored after the prompt: the longest choice (log-likelihood kinds) or the
    generation budget (generating kinds). Choices are counted in characters, an upper bound."""
    choices = example.get("choices")
    if isinstance(choices, list) and choices:
        return max(len(str(c)) for c in choices)
    return int(getattr(utility, "max_new_tokens", 0) or 0)


def check_prompts_fit(base_model: str, utility: Any, splits: dict[str, list[dict[str, Any]]]) -> None:
    """A UserError naming the data file and the example whose prompt cannot fit."""
    limit = context_length(base_model)
    if limit is None or not hasattr(utility, "data"):  # multitask parts carry their own data
        return
    from ..engine.models import load_tokenizer
    from ..engine.prompts import prompt_ids

    files = {"val": utility.data, "test": getattr(utility, "test_data", None)}
    prompts = [(split, k, text, room_after(ex, utility)) for split, examples in splits.items()
               for k, ex in enumerate(examples) if isinstance(text := ex.get("prompt", ex.get("question")), str)]
    tokenizer = load_tokenizer(base_model)
    for split, k, text, room in prompts:
        need = len(prompt_ids(tokenizer, text, utility)) + room
        if need > limit:
            raise UserError(f"{files[split]}: example {k + 1}",
                            f"its prompt needs {need} tokens with what is scored after it, more than the "
                            f"base model's context of {limit}")
