"""Greedy decoding for scoring: KV cache, LM head on one position, rows leave when done.

`model.generate` keeps every row of a batch until the last one stops, applies the LM head
through a broadcast batched matmul at the prompt's last position, and copies the logits
each step. Scoring needs less: the argmax of one position per row. Here a row leaves the
batch (and the KV cache) as soon as it emits a stop token or its caller says its outcome
is decided, so the remaining steps run on the rows that still matter.

Positions follow `generate` for left padding (cumulative sum of the attention mask), so the
tokens are the ones `generate` would produce (tested against it).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from transformers import DynamicCache

from .base import backbone_and_head

# (example index, tokens generated so far) -> whether more tokens could change its outcome
NeedsMore = Callable[[int, list[int]], bool]


@torch.inference_mode()
def greedy_decode(model: torch.nn.Module, prompts: Sequence[Sequence[int]], batches: list[list[int]], *,
                  pad_id: int, stops: set[int], max_new_tokens: int,
                  needs_more: Optional[NeedsMore] = None) -> list[list[int]]:
    """Generated token ids per prompt (a stop token, when emitted, ends the list); `batches`
    lists prompt indices, as base.length_batches makes them."""
    backbone, head = backbone_and_head(model)
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in prompts]
    for rows in batches:
        width = max(len(prompts[k]) for k in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, k in enumerate(rows):  # left padding: every row continues from the last column
            ids[b, width - len(prompts[k]):] = torch.tensor(prompts[k], dtype=torch.long)
            mask[b, width - len(prompts[k]):] = 1
        positions = (mask.cumsum(-1) - 1).masked_fill_(mask == 0, 1)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        cache = DynamicCache()
        for step in range(max_new_tokens):
            hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                              past_key_values=cache, use_cache=True).last_hidden_state
            tokens = head(hidden[:, -1, :]).argmax(-1).tolist()
            keep = []
            for b, k in enumerate(rows):
                out[k].append(tokens[b])
                if tokens[b] not in stops and (needs_more is None or needs_more(k, out[k])):
                    keep.append(b)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(rows):
                sel = torch.tensor(keep, device=device)
                cache.batch_select_indices(sel)
                mask, positions = mask[sel], positions[sel]
                rows = [rows[b] for b in keep]
            ids = torch.tensor([[tokens[b]] for b in keep], dtype=torch.long, device=device)
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            positions = positions[:, -1:] + 1
    return out
