"""Greedy decoding for scoring: KV cache, LM head on one position, rows leave when done.

`model.generate` keeps every row of a batch until the last one stops, applies the LM head
through a broadcast batched matmul at the prompt's last position, and copies the logits
each step. Scoring needs less: the argmax of one position per row. Here a row leaves the
batch (and the KV cache) as soon as it emits a stop token or its caller says its outcome
is decided, so the remaining steps run on the rows that still matter.

Two ways in, both generators of (prompt index, generated ids) as each row's tokens become
final, so a caller can stop consuming (early exit) at any point:
  greedy_decode       batches of left-padded prompts, each prefilled and decoded on its own;
  tree_greedy_decode  the prompts' shared prefixes prefilled once (prefix_tree.py), then
                      the rows still going pooled across prefill batches for the decode
                      steps, which are weight-bandwidth bound: fewer, fuller steps.
Positions follow `generate` for left padding (cumulative sum of the attention mask), so the
tokens are the ones `generate` would produce (tested against it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from .decode_pool import DecodePool
from .model_parts import backbone_and_head, cache_keyword
from .prefix_tree import PrefixForest, path_columns, tree_inputs

# (example index, tokens generated so far) -> whether more tokens could change its outcome
NeedsMore = Callable[[int, list[int]], bool]
Batching = Callable[[list[int]], list[list[int]]]  # lengths -> batches of indices (base.length_batches)
Finished = Iterator[tuple[int, list[int]]]
# greedy_tokens' logits are at most ROWS x VOCAB_SLICE floats (4 MB) at a time
VOCAB_SLICE, ROWS = 4096, 256


def greedy_tokens(head: torch.nn.Module, hidden: torch.Tensor) -> list[int]:
    """argmax(head(hidden)) per row, a slice of the vocabulary at a time. The logits are never
    whole, so up to ROWS rows go through one pass over the head's weight: at a few rows that
    pass is memory-bound (~10 ms for SmolLM2's 49k x 576), and it was paid per few rows."""
    if len(hidden) > ROWS:
        return [t for r0 in range(0, len(hidden), ROWS) for t in greedy_tokens(head, hidden[r0:r0 + ROWS])]
    if type(head) is not torch.nn.Linear:  # wrapped (e.g. an adapter on the head): as it is
        return head(hidden).argmax(-1).tolist()
    weight, bias = head.weight, head.bias
    best = index = None
    for v0 in range(0, weight.shape[0], VOCAB_SLICE):
        part = slice(v0, v0 + VOCAB_SLICE)
        top, at = F.linear(hidden, weight[part], None if bias is None else bias[part]).max(-1)
        if best is None:
            best, index = top, at
        else:  # strictly greater: a tie keeps the lower token id, as argmax does
            better = top > best
            best, index = torch.where(better, top, best), torch.where(better, at + v0, index)
    return index.tolist()


def _continues(token: int, k: int, out: list[list[int]], stops: set[int], needs_more: Optional[NeedsMore]) -> bool:
    return token not in stops and (needs_more is None or needs_more(k, out[k]))


def _steps(backbone, head, rows: list[int], ids, mask, positions, cache, out: list[list[int]], *,
           stops: set[int], budget: int, needs_more: Optional[NeedsMore]) -> Finished:
    """Up to `budget` greedy steps for `rows` (prompt indices), starting from the given inputs."""
    for step in range(budget):
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                          **{cache_keyword(backbone): cache}, use_cache=True).last_hidden_state
        tokens = greedy_tokens(head, hidden[:, -1, :])
        keep = []
        for b, k in enumerate(rows):
            out[k].append(tokens[b])
            if step < budget - 1 and _continues(tokens[b], k, out, stops, needs_more):
                keep.append(b)
            else:
                yield k, out[k]
        if not keep:
            return
        if len(keep) < len(rows):
            sel = torch.tensor(keep, device=ids.device)
            cache.batch_select_indices(sel)
            mask, positions = mask[sel], positions[sel]
            rows = [rows[b] for b in keep]
        ids = torch.tensor([[tokens[b]] for b in keep], dtype=torch.long, device=ids.device)
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        positions = positions[:, -1:] + 1


@torch.inference_mode()
def greedy_decode(model: torch.nn.Module, prompts: Sequence[Sequence[int]], batches: list[list[int]], *,
                  pad_id: int, stops: set[int], max_new_tokens: int,
                  needs_more: Optional[NeedsMore] = None) -> Finished:
    """Each batch (prompt indices) left-padded, prefilled and decoded to the end on its own."""
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
        yield from _steps(backbone, head, list(rows), ids.to(device), mask.to(device), positions.to(device),
                          DynamicCache(), out, stops=stops, budget=max_new_tokens, needs_more=needs_more)


@torch.inference_mode()
def tree_greedy_decode(model: torch.nn.Module, prompts: Sequence[Sequence[int]], batching: Batching, *,
                       cap: int, decode_rows: int, pad_id: int, stops: set[int], max_new_tokens: int,
                       needs_more: Optional[NeedsMore] = None) -> Finished:
    """Prefill the prompts' trie in rows of about `cap` nodes; the first token of each prompt
    comes from its last node. A row still going takes its KV to the decode pool; whenever
    the pool holds `decode_rows` rows they take one decode step together (continuous
    batching, decode_pool.py), so few steps run nearly empty."""
    backbone, head = backbone_and_head(model)
    param = next(model.parameters())
    forest, ends = PrefixForest(), defaultdict(list)
    for k, p in enumerate(prompts):
        ends[forest.insert(p)[-1]].append(k)  # equal prompts share their last node
    rows = forest.rows(cap)
    out: list[list[int]] = [[] for _ in prompts]

    def goes_on(k: int) -> bool:
        return len(out[k]) < max_new_tokens and _continues(out[k][-1], k, out, stops, needs_more)

    pool = DecodePool(backbone, lambda hidden: greedy_tokens(head, hidden), decode_rows, out, goes_on, param.device)
    for batch in batching([len(r) for r in rows]):
        part = [rows[i] for i in batch]
        ids, positions, mask = tree_inputs(forest, part, pad_id, param.dtype, param.device)
        if len(part) == 1 and all(forest.depth[n] == i + 1 for i, n in enumerate(part[0])):
            mask = None  # one prompt's chain: plain causal attention, cheaper than the same as a mask
        cache = DynamicCache()
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                          **{cache_keyword(backbone): cache}, use_cache=True).last_hidden_state
        picks = [(k, b, i) for b, row in enumerate(part) for i, n in enumerate(row) for k in ends.pop(n, ())]
        if picks:
            tokens = greedy_tokens(head, hidden[[b for _, b, _ in picks], [i for _, _, i in picks]])
            for (k, b, i), token in zip(picks, tokens):
                out[k].append(token)
                if goes_on(k):
                    cols = torch.tensor(path_columns(forest, part[b], i), device=param.device)
                    pool.add(k, [(layer.keys[b][:, cols], layer.values[b][:, cols]) for layer in cache.layers])
                else:
                    yield k, out[k]
        del cache, hidden
        while len(pool) >= decode_rows:
            yield from pool.step()
    while len(pool):
        yield from pool.step()

