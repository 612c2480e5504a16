"""Greedy decode steps for rows whose prompts were prefilled apart (continuous batching).

A row joins with its prompt's KV and leaves once it is done. The rows decoding together
hold one KV cache, left-padded to one width, that stays in place from step to step: a row's
KV is copied in once, when it joins, and the cache is rebuilt only when rows join. Rebuilding
it every step (to let any waiting row in) copied all of it twice per step, as much as the
step itself costs on long prompts. Columns that only padding holds go as rows leave, so a
long prompt that is done stops widening the others' attention.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
from transformers import DynamicCache

from .model_parts import cache_keyword

Pending = tuple[int, list[Optional[tuple[torch.Tensor, torch.Tensor]]]]  # (prompt, per-layer KV (heads, tokens, dim))
Finished = Iterator[tuple[int, list[int]]]


class DecodePool:
    """Rows waiting to decode and the group decoding now (at most `size` rows). out[k] holds
    prompt k's tokens so far (the last one is fed next); goes_on(k) says whether it needs more."""

    def __init__(self, backbone: torch.nn.Module, head: Callable[[torch.Tensor], list[int]], size: int,
                 out: list[list[int]], goes_on: Callable[[int], bool], device: torch.device):
        self.backbone, self.head, self.size, self.out, self.goes_on, self.device = backbone, head, size, out, goes_on, device
        self.waiting: list[Pending] = []
        self.rows: list[int] = []  # the group's prompts
        self.lengths: list[int] = []  # tokens in each row's KV
        self.cache: Optional[DynamicCache] = None
        self.mask: Optional[torch.Tensor] = None  # (rows, cache width), 0 on left padding

    def __len__(self) -> int:
        return len(self.rows) + len(self.waiting)

    def add(self, k: int, kv: list[Optional[tuple[torch.Tensor, torch.Tensor]]]) -> None:
        self.waiting.append((k, kv))

    def step(self) -> Finished:
        """One greedy step for the group, first filled up from the waiting rows."""
        self._fill()
        ids = torch.tensor([[self.out[k][-1]] for k in self.rows], dtype=torch.long, device=self.device)
        positions = torch.tensor([[n] for n in self.lengths], dtype=torch.long, device=self.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        hidden = self.backbone(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                               **{cache_keyword(self.backbone): self.cache}, use_cache=True).last_hidden_state
        keep = []
        for b, (k, token) in enumerate(zip(self.rows, self.head(hidden[:, -1, :]))):
            self.out[k].append(token)
            self.lengths[b] += 1
            if self.goes_on(k):
                keep.append(b)
            else:
                yield k, self.out[k]
        self._keep(keep)

    def _keep(self, keep: list[int]) -> None:
        if not keep:
            self.rows, self.lengths, self.cache, self.mask = [], [], None, None
            return
        if len(keep) < len(self.rows):
            sel = torch.tensor(keep, device=self.device)
            self.cache.batch_select_indices(sel)
            self.mask = self.mask[sel]
            self.rows, self.lengths = [self.rows[b] for b in keep], [self.lengths[b] for b in keep]
        lead = self.mask.shape[1] - max(self.lengths)  # columns that are padding in every row
        if lead > 0:
            self.mask = self.mask[:, lead:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]

    def _fill(self) -> None:
        """Move waiting rows into the group, up to `size`; the cache is re-padded to the widest."""
        joining, self.waiting = self.waiting[:self.size - len(self.rows)], self.waiting[self.size - len(self.rows):]
        if not joining:
            return
        lengths = [kv[0][0].shape[1] for _, kv in joining]
        old = 0 if self.mask is None else self.mask.shape[1]
        width, n_old = max([old] + lengths), len(self.rows)
        rows = n_old + len(joining)
        cache = DynamicCache()
        for layer in range(len(joining[0][1])):
            k0, v0 = joining[0][1][layer]
            keys = k0.new_zeros((rows, k0.shape[0], width, k0.shape[2]))
            values = v0.new_zeros((rows, v0.shape[0], width, v0.shape[2]))
            if n_old:
                keys[:n_old, :, width - old:] = self.cache.layers[layer].keys
                values[:n_old, :, width - old:] = self.cache.layers[layer].values
                self.cache.layers[layer].keys = self.cache.layers[layer].values = None  # copied: free it now
            for b, (_, kv) in enumerate(joining, start=n_old):
                keys[b, :, width - lengths[b - n_old]:] = kv[layer][0]
                values[b, :, width - lengths[b - n_old]:] = kv[layer][1]
                kv[layer] = None  # copied: let it go now, not after the last layer (peak memory)
            cache.update(keys, values, layer)
        mask = torch.zeros((rows, width), dtype=torch.long, device=self.device)
        if n_old:
            mask[:n_old, width - old:] = self.mask
        for b, n in enumerate(lengths, start=n_old):
            mask[b, width - n:] = 1
        self.cache, self.mask = cache, mask
        self.rows += [k for k, _ in joining]
        self.lengths += lengths
