"""How sequences are grouped into forward passes: by length, or through the prefix trie."""

from __future__ import annotations

from typing import Any

import torch

from ..sections import EngineConfig
from .model_parts import causal_lm
from .prefix_tree import supports_tree_attention


# Padding a pass is nearly free while it stays small (a pass over few tokens is bound by
# streaming the weights) and costs its share of compute beyond that: a long prompt padded
# to a longer one pays for tokens no one reads, and with masked rather than causal attention.
FREE_PADDED_TOKENS = 256
MAX_PADDING = 1 / 8  # of a batch's own tokens, past FREE_PADDED_TOKENS


def length_batches(lengths: list[int], config: EngineConfig) -> list[list[int]]:
    """Indices in batches of similar length, longest first: at most batch_sequences and,
    with batch_tokens set, at most that many padded tokens (a batch holds one sequence at
    least). A batch over FREE_PADDED_TOKENS padded tokens takes a shorter sequence only
    while its padding stays within MAX_PADDING of its tokens."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batches: list[list[int]] = []
    real = 0  # tokens of the last batch
    for k in order:
        if batches and _fits(batches[-1], real, lengths, lengths[k], config):
            batches[-1].append(k)
            real += lengths[k]
        else:
            batches.append([k])
            real = lengths[k]
    return batches


def _fits(batch: list[int], real: int, lengths: list[int], n: int, config: EngineConfig) -> bool:
    padded = (len(batch) + 1) * lengths[batch[0]]  # the first is the longest: its length is the width
    return (len(batch) < config.batch_sequences
            and (config.batch_tokens is None or padded <= config.batch_tokens)
            and (padded <= FREE_PADDED_TOKENS or padded - real - n <= MAX_PADDING * (real + n)))


def tree_batches(lengths: list[int], config: EngineConfig) -> list[list[int]]:
    """Prefix-tree rows for generation: as length_batches, but a row over FREE_PADDED_TOKENS
    runs alone. A pass that long is compute-bound already, so batching gains nothing, and a
    row alone that is one prompt's chain runs with causal attention instead of its mask."""
    return [part for batch in length_batches(lengths, config)
            for part in ([[k] for k in batch] if lengths[batch[0]] > FREE_PADDED_TOKENS else [batch])]


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
