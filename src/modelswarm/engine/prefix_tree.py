"""Shared prompt prefixes computed once: the prompts' token trie, run with tree attention.

Validation prompts share a lot: a chat template, a task's instruction, "Parity of", the
question in front of every choice. On the demo set the 1,601 prompt tokens are 939 trie
nodes. Each node is one token whose key/value depend only on its path from the root, so
the decoder runs each node once: a row of a batch holds a set of trie nodes closed under
ancestors (parents first), a node sits at position depth - 1, and the attention mask lets
a node see exactly its ancestors and itself. Every node's hidden state and KV are then the
ones its prompt alone would give (up to float rounding: the matmul shapes differ).

Large subtrees are split so a row stays near `cap` tokens (attention in a row is dense,
so its cost grows with the square of the width); the chain of ancestors above a split is
repeated in every row made from it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

# attention implementations that take a custom 4D additive mask as given
TREE_ATTENTION = {"sdpa", "eager"}


def supports_tree_attention(model: torch.nn.Module) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) in TREE_ATTENTION


class PrefixForest:
    """A token trie. Node ids count up from 0 in insertion order, so parents come first."""

    def __init__(self) -> None:
        self.token: list[int] = []
        self.parent: list[int] = []  # -1 at the top
        self.depth: list[int] = []  # 1 for a first token
        self.kids: list[dict[int, int]] = []
        self.top: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.token)

    def insert(self, seq: Sequence[int]) -> list[int]:
        """The node of each position of seq, created where missing."""
        nodes, level, parent = [], self.top, -1
        for tok in seq:
            node = level.get(tok)
            if node is None:
                node = level[tok] = len(self.token)
                self.token.append(int(tok))
                self.parent.append(parent)
                self.depth.append(len(nodes) + 1)
                self.kids.append({})
            nodes.append(node)
            level, parent = self.kids[node], node
        return nodes

    def sizes(self) -> list[int]:
        size = [1] * len(self)
        for node in range(len(self) - 1, -1, -1):  # children have larger ids than parents
            if self.parent[node] >= 0:
                size[self.parent[node]] += size[node]
        return size

    def subtree(self, node: int) -> list[int]:
        out, stack = [], [node]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed(list(self.kids[n].values())))
        return out

    def rows(self, cap: int) -> list[list[int]]:
        """Node lists, each closed under ancestors and parents first, covering every node.
        Whole subtrees are packed into a row up to `cap` nodes; a subtree too big for that
        is split among its children, with its chain of ancestors leading each part."""
        size = self.sizes()
        out: list[list[int]] = []
        todo: list[tuple[Optional[int], list[int]]] = [(None, [])]  # (node to split, chain down to it)
        while todo:
            node, chain = todo.pop()
            room = max(1, cap - len(chain))
            row: list[int] = []
            for child in (self.top if node is None else self.kids[node]).values():
                if size[child] > room:
                    todo.append((child, chain + [child]))
                    continue
                if len(row) + size[child] > room:
                    out.append(chain + row)
                    row = []
                row += self.subtree(child)
            if row:
                out.append(chain + row)
        return out


def tree_inputs(forest: PrefixForest, rows: list[list[int]], pad_id: int, dtype: torch.dtype,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, position_ids and the additive 4D mask (0 = may attend) for a batch of rows.
    Padding columns see only themselves, so no softmax row is empty."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    sees = np.zeros((len(rows), width, width), dtype=bool)
    for b, row in enumerate(rows):
        col = {n: i for i, n in enumerate(row)}
        for i, n in enumerate(row):
            ids[b, i], pos[b, i] = forest.token[n], forest.depth[n] - 1
            p = forest.parent[n]
            if p >= 0:
                sees[b, i] = sees[b, col[p]]
            sees[b, i, i] = True
        for i in range(len(row), width):
            sees[b, i, i] = True
    mask = torch.zeros(sees.shape, dtype=dtype)
    mask.masked_fill_(torch.from_numpy(~sees), torch.finfo(dtype).min)
    return (torch.from_numpy(ids).to(device), torch.from_numpy(pos).to(device), mask[:, None].to(device))


def path_columns(forest: PrefixForest, row: list[int], index: int) -> list[int]:
    """Columns of row[index]'s ancestors and itself, root first: its prompt's KV in the row."""
    col = {n: i for i, n in enumerate(row)}
    cols, node = [], row[index]
    while node >= 0:
        cols.append(col[node])
        node = forest.parent[node]
    return cols[::-1]
