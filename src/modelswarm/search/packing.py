"""Per-example lists as the evaluation cache keeps them.

The driver holds every evaluation of a run (the journal is the cache, evaluations.py), and a
list of Python objects costs about 30 bytes an item: 3.5 KB an evaluation of 60 examples,
70 MB over a 20,000-evaluation run (bench/soak.py). So the cache keeps 0/1 marks as bits,
small integer answers as int8 or int16 and generated answers as interned strings, about
1 KB an evaluation; unpacked() gives back the very same list.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from typing import Any, NamedTuple, Optional

import numpy as np

from ..cluster.worker import EvalResult


class Packed(NamedTuple):
    """A packed per-example list: how it is packed, the items' bytes and how many there are
    (a tuple, so evaluations still compare equal by value)."""

    dtype: str  # "bits": 0.0/1.0 marks, one bit each; else numpy's dtype of the items
    data: bytes
    n: int


def _is_mark(v: Any) -> bool:
    return type(v) is float and (v == 1.0 or (v == 0.0 and math.copysign(1.0, v) > 0))


def packed(values: Optional[list[Any]]) -> Any:
    """values as the cache keeps them (the module docstring says why)."""
    if not values:
        return values
    if all(_is_mark(v) for v in values):
        return Packed("bits", np.packbits(np.array(values, dtype=bool)).tobytes(), len(values))
    if all(type(v) is int for v in values):
        for dtype in ("<i1", "<i2"):
            info = np.iinfo(dtype)
            if info.min <= min(values) and max(values) <= info.max:
                return Packed(dtype, np.array(values, dtype=dtype).tobytes(), len(values))
    return [sys.intern(v) if type(v) is str else v for v in values]


def unpacked(values: Any) -> Optional[list[Any]]:
    if not isinstance(values, Packed):
        return values
    if values.dtype == "bits":
        return np.unpackbits(np.frombuffer(values.data, dtype=np.uint8), count=values.n).astype(np.float64).tolist()
    return np.frombuffer(values.data, dtype=values.dtype).tolist()


def packed_result(result: EvalResult) -> EvalResult:
    """The result as the cache keeps it (packed per-example lists, the worker's name interned)."""
    u = result.utility
    return replace(result, worker=sys.intern(result.worker),
                   utility=replace(u, per_example=packed(u.per_example), answers=packed(u.answers)))
