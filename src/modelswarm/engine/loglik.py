"""Log-likelihood of continuations: the mean log-probability of each one's tokens.

Every (context, continuation) pair is one sequence. With prefix sharing (the default) the
sequences' token trie runs through the decoder, so a context is computed once for all its
continuations (prefix_tree.py); without, each sequence is a right-padded row, batched by
length. Either way the LM head is applied only at the positions that predict continuation
tokens (a 49k-vocab head on every position would dominate), `head_rows` at a time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import torch

from ..sections import EngineConfig
from .batching import length_batches, shares_prefixes, tree_cap
from .model_parts import backbone_and_head
from .prefix_tree import PrefixForest, tree_inputs

# (group, member, context ids, continuation ids): a group's members are scored together
Pair = tuple[int, int, list[int], list[int]]
# Per forward pass, the hidden states at the positions that predict continuation tokens
# and, for each of them, the (target token, group, member) triples it scores.
Positions = Iterator[tuple[torch.Tensor, list[list[tuple[int, int, int]]]]]


@torch.inference_mode()
def mean_logprobs(model: torch.nn.Module, seqs: Sequence[Pair], config: EngineConfig,
                  pad_id: int) -> Iterator[tuple[int, list[float]]]:
    """(group, mean log-probability of each member's continuation) as each group is complete."""
    if shares_prefixes(model, config):
        positions = _tree_positions(model, seqs, config, pad_id)
    else:
        positions = _padded_positions(model, seqs, config, pad_id)
    _, head = backbone_and_head(model)
    members: dict[int, int] = defaultdict(int)
    missing: dict[int, int] = defaultdict(int)  # continuation tokens of a group not scored yet
    for g, m, _, c_ids in seqs:
        members[g] = max(members[g], m + 1)
        missing[g] += len(c_ids)
    logprobs = {g: [[] for _ in range(n)] for g, n in members.items()}
    step = config.head_rows  # the head's output is vocab-wide: a few rows at a time
    for hidden, wants in positions:
        for start in range(0, len(wants), step):
            lp = torch.log_softmax(head(hidden[start:start + step]).float(), dim=-1).cpu()
            for row, targets in enumerate(wants[start:start + step]):
                for token, g, m in targets:
                    logprobs[g][m].append(float(lp[row][token]))
                    missing[g] -= 1
                    if missing[g] == 0:
                        yield g, [sum(v) / len(v) for v in logprobs[g]]


@torch.inference_mode()
def _padded_positions(model, seqs: Sequence[Pair], config: EngineConfig, pid: int) -> Positions:
    """Each sequence on its own row, right-padded, batched by length."""
    backbone, _ = backbone_and_head(model)
    device = next(model.parameters()).device
    for idx in length_batches([len(p) + len(c) for _, _, p, c in seqs], config):
        batch = [seqs[k] for k in idx]
        width = max(len(p) + len(c) for _, _, p, c in batch)
        ids = torch.full((len(batch), width), pid, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, wants = [], [], []
        for b, (g, m, p, c_ids) in enumerate(batch):
            ids[b, :len(p) + len(c_ids)] = torch.tensor(p + c_ids)
            mask[b, :len(p) + len(c_ids)] = 1
            for t, token in enumerate(c_ids):  # hidden state at position j predicts token j+1
                rows.append(b)
                cols.append(len(p) - 1 + t)
                wants.append([(token, g, m)])
        hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        yield hidden[torch.tensor(rows), torch.tensor(cols)], wants


@torch.inference_mode()
def _tree_positions(model, seqs: Sequence[Pair], config: EngineConfig, pid: int) -> Positions:
    """The sequences' trie (prefix_tree.py): a context shared by its continuations runs once, and a
    position that predicts several continuations' tokens gets the LM head once."""
    backbone, _ = backbone_and_head(model)
    param = next(model.parameters())
    forest, wanted = PrefixForest(), defaultdict(list)
    for g, m, p, c_ids in seqs:
        nodes = forest.insert(p + c_ids)
        for t, token in enumerate(c_ids):
            wanted[nodes[len(p) - 1 + t]].append((token, g, m))
    rows = forest.rows(tree_cap(config))
    for batch in length_batches([len(r) for r in rows], config):
        part = [rows[k] for k in batch]
        picks = [(b, j, wanted.pop(n)) for b, row in enumerate(part) for j, n in enumerate(row) if n in wanted]
        if not picks:
            continue
        ids, positions, mask = tree_inputs(forest, part, pid, param.dtype, param.device)
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        yield hidden[[b for b, _, _ in picks], [j for _, j, _ in picks]], [w for _, _, w in picks]
