"""Free-text greedy generation on the scoring engine: batched, KV-cached, prefix-shared.

The one place utilities turn prompts into generated text (exact_match, multiple_choice with
`scoring: generate`, reward_model, llm_judge): prompts go through the chat template as
utility.chat_template says (prompts.py), rows are decoded greedily until a stop
token or max_new_tokens (greedy.py), through the prompts' prefix trie when the
model takes tree attention, else in left-padded batches of similar length.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from ..sections import EngineConfig
from .batching import length_batches, pad_id, shares_prefixes, tree_batches, tree_cap
from .greedy import greedy_decode, tree_greedy_decode


def generate_ids(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Sequence[int]], config: EngineConfig, *,
                 max_new_tokens: int, stops: Optional[set[int]] = None,
                 needs_more: Optional[Callable[[int, list[int]], bool]] = None) -> Iterator[tuple[int, list[int]]]:
    """(prompt index, generated token ids) as each row finishes. stops: token ids that end a
    row (default: EOS); needs_more(k, ids) may end a row early (its text is then cut short)."""
    if stops is None:
        stops = {tokenizer.eos_token_id}
    common = dict(pad_id=pad_id(tokenizer), stops=stops, max_new_tokens=max_new_tokens, needs_more=needs_more)
    if shares_prefixes(model, config):
        yield from tree_greedy_decode(model, prompts, lambda lengths: tree_batches(lengths, config),
                                      cap=tree_cap(config), decode_rows=config.decode_rows, **common)
    else:
        yield from greedy_decode(model, prompts, length_batches([len(p) for p in prompts], config), **common)


def generate_texts(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Sequence[int]], config: EngineConfig, *,
                   max_new_tokens: int, stops: Optional[set[int]] = None) -> list[str]:
    """The decoded continuation of every prompt, special tokens dropped, whitespace stripped
    at both ends (as the official batch_generate and batch_generate_chat_template do)."""
    texts = [""] * len(prompts)
    for k, ids in generate_ids(model, tokenizer, prompts, config, max_new_tokens=max_new_tokens, stops=stops):
        texts[k] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return texts
