"""Per-layer-group coefficients (`swarm.granularity: layers`): which coefficients a tensor gets.

A row of n * K coefficients holds K groups of n, group-major: coeffs[g*n:(g+1)*n] weigh the
experts in the g-th of K contiguous groups of decoder layers. The decoder layers are those
the bank's tensors name (`layers.N`, `h.N`, `blocks.N` in the key), L = the highest N + 1,
and layer l belongs to group l * K // L (group sizes differ by at most one, earlier groups
the smaller). A tensor outside the decoder layers (embeddings, the final norm, an lm_head
copy) gets the mean of the K groups' coefficients: it serves every layer, and a row whose
groups agree composes it exactly as the global row would.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
Span = tuple[int, int, Optional[int]]  # [start, stop) of the flat bank, its group (None: shared)
Run = tuple[int, int, list[float]]  # [start, stop) of the flat bank, the coefficients it is composed with


def layer_of(key: str) -> Optional[int]:
    found = LAYER.search(key)
    return int(found.group(1)) if found else None


def n_layers(keys: Sequence[str]) -> int:
    """L: the highest decoder-layer index the tensors name, plus one (0: none)."""
    return max((l for k in keys if (l := layer_of(k)) is not None), default=-1) + 1


def spans(keys: Sequence[str], sizes: Sequence[int], groups: int) -> list[Span]:
    """The flat bank cut into runs of one group each, in bank order."""
    total = n_layers(keys)
    out: list[Span] = []
    off = 0
    for key, size in zip(keys, sizes):
        layer = layer_of(key)
        g = None if layer is None else layer * groups // total
        if out and out[-1][2] == g and out[-1][1] == off:
            out[-1] = (out[-1][0], off + size, g)
        else:
            out.append((off, off + size, g))
        off += size
    return out


def group_rows(coeffs: Sequence[float], n_experts: int) -> tuple[list[list[float]], list[float]]:
    """Each group's n coefficients, and the shared row (their mean) for tensors outside the layers."""
    c = np.asarray([float(x) for x in coeffs], dtype=np.float64)
    if len(c) % n_experts or not len(c):
        raise ValueError(f"{len(c)} coefficients for {n_experts} experts")
    rows = c.reshape(-1, n_experts)
    shared = rows[0] if (rows == rows[0]).all() else rows.mean(axis=0)  # agreeing groups: exactly their row
    return [r.tolist() for r in rows], shared.tolist()


def runs(coeffs: Sequence[float], n_experts: int, keys: Sequence[str], sizes: Sequence[int]) -> list[Run]:
    """The flat bank as runs [start, stop), each with the n coefficients it is composed with: a
    global row (n) is one run of the whole bank; a layer row (n * K) one run per group (spans),
    the shared row for tensors outside the layers."""
    if len(coeffs) == n_experts:
        return [(0, sum(sizes), [float(c) for c in coeffs])]
    rows, shared = group_rows(coeffs, n_experts)
    return [(start, stop, shared if g is None else rows[g])
            for start, stop, g in spans(keys, sizes, len(coeffs) // n_experts)]


def expand(rows: np.ndarray, groups: int) -> np.ndarray:
    """Global rows (N, n) as layer rows (N, n * groups): the same coefficients in every group."""
    return np.tile(rows, (1, groups))
