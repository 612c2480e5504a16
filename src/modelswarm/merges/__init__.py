"""Data-free merges in weight-delta space, one module per method.

A method module defines `METHOD = MergeMethod(...)`: its name, the merge parameters it reads
(the others are left out of a merge's journal key, so equal merges share one), the tensor
function, and the grid `modelswarm compare` scores on validation (compare/merge_grid.py makes
a row of every method that has one). Adding a method is adding a file here.

The arithmetic runs tensor by tensor in delta.py: merge(deltas, weights, spec) takes the
(n, *shape) deltas of one tensor, the n weights (spec.weights, or spec.scale for each) and
the merge (its density and seed) and returns the merged delta.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

PARAMETERS = ("scale", "density", "seed")  # what a merge may read besides its weights


@dataclass(frozen=True)
class MergeMethod:
    name: str
    merge: Callable[..., Any]  # (deltas (n, *shape), weights (n,), spec) -> merged delta
    reads: tuple[str, ...] = PARAMETERS  # a method that does not say keys on every parameter
    grid: Callable[[int], list[dict[str, Any]]] | None = None  # seed -> the compare grid's parameters
    seeded: bool = False  # its grid depends on the seed (random masks), so compare runs it per seed
    summary: str = field(default="")  # the compare table's one-line description


METHODS: dict[str, MergeMethod] = {}
for _mod in pkgutil.iter_modules(__path__):
    _method = importlib.import_module(f"{__name__}.{_mod.name}").METHOD
    METHODS[_method.name] = _method


def method(name: str) -> MergeMethod:
    if name not in METHODS:
        raise ValueError(f"unknown merge {name!r} (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]
