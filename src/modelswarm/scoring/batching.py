"""How sequences are grouped into forward passes: by length, or through the prefix trie."""

from __future__ import annotations

from typing import Any

import torch

from ..sections import EngineConfig
from .model_parts import causal_lm
from .prefix_tree import supports_tree_attention


def length_batches(lengths: list[int], config: EngineConfig) -> list[list[int]]:
    """Indices in batches of similar length, longest first: at most batch_sequences and,
    with batch_tokens set, at most that many padded tokens (a batch holds one sequence at least)."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batches, start = [], 0
    while start < len(order):
        size = config.batch_sequences
        if config.batch_tokens is not None:  # the first is the longest: its length is the width
            size = max(1, min(size, config.batch_tokens // max(1, lengths[order[start]])))
        batches.append(order[start:start + size])
        start += size
    return batches


def shares_prefixes(model: torch.nn.Module, config: EngineConfig) -> bool:
    """Score through the prompts' prefix tree (prefix_tree.py)? Asked for, and the model's
    attention takes the tree's custom mask."""
    return config.prefix_sharing and supports_tree_attention(causal_lm(model))


def tree_cap(config: EngineConfig) -> int:
    """Nodes per row of a prefix tree (prefix_tree.py): batch_tokens when set, else 256,
    about where the row's dense attention starts to cost more than sharing saves."""
    return config.batch_tokens or 256


def pad_id(tokenizer: Any) -> int:
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id
    return int(pid if pid is not None else 0)
