"""What an evaluation scores: a candidate composition of the experts.

A Candidate has a journal key (key(), the cache's identity), its own journal field
(to_json() -> {field: payload}, from_json() back) and a type name; the worker resolves a
composer per type name (worker.COMPOSERS). Two types:

  CoefficientRow  the swarm's composition: one coefficient per expert, or one per expert per
                  contiguous group of decoder layers (a row of n * K; layer_groups.py)
  DeltaMerge      a data-free merge of the experts' deltas (modelswarm compare; delta.py)

The keys are those the journals have always used (a row: its float64 bytes; a merge: its
canonical JSON), so old run and compare directories replay without recomputing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterable, Optional, Sequence

import numpy as np

from .. import merges

CANDIDATES: dict[str, type["Candidate"]] = {}  # type name -> class


def register(cls: type["Candidate"]) -> type["Candidate"]:
    CANDIDATES[cls.type_name] = cls
    return cls


def coeff_hash(coeffs: Iterable[float]) -> str:
    """Identity of a particle position: the exact float64 bytes, so a replay matches bit for bit."""
    data = np.ascontiguousarray(np.asarray(list(coeffs), dtype="<f8")).tobytes()
    return hashlib.sha256(data).hexdigest()[:20]


def merge_hash(key: str) -> str:
    """Identity of a delta-space merge: its spec as canonical JSON (never equal to a coeff_hash)."""
    return "m" + hashlib.sha256(key.encode()).hexdigest()[:19]


class Candidate:
    __slots__ = ()  # its dataclasses use slots: the run's cache holds one per evaluation
    type_name: ClassVar[str]
    field: ClassVar[str]  # its key in a journal line and a compare row

    def key(self) -> str:
        raise NotImplementedError

    def payload(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_payload(cls, payload: Any) -> "Candidate":
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {self.field: self.payload()}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Candidate":
        """The candidate of a journal line or compare row: the one type whose field is set
        (a row's `coeffs` is the fallback: merge lines carry an empty `coeffs` too)."""
        for cls in CANDIDATES.values():
            if cls is not CoefficientRow and d.get(cls.field) is not None:
                return cls.from_payload(d[cls.field])
        return CoefficientRow.from_payload(d["coeffs"])


@register
@dataclass(frozen=True, slots=True)
class CoefficientRow(Candidate):
    """sum_j coeffs[j] * E_j; with n * K coefficients, group g's n (coeffs[g*n:(g+1)*n]) apply
    to the g-th contiguous group of decoder layers (layer_groups.py)."""

    coeffs: tuple[float, ...]
    type_name: ClassVar[str] = "coefficients"
    field: ClassVar[str] = "coeffs"

    @classmethod
    def of(cls, coeffs: Sequence[float]) -> "CoefficientRow":
        return cls(tuple(float(c) for c in coeffs))

    def key(self) -> str:
        return coeff_hash(self.coeffs)

    def payload(self) -> list[float]:
        return list(self.coeffs)

    @classmethod
    def from_payload(cls, payload: Any) -> "CoefficientRow":
        return cls.of(payload)


@register
@dataclass(frozen=True)
class DeltaMerge(Candidate):
    """One delta-space merge (merges/: one module per method): method, its scale lambda
    (weight of every delta), density (the kept fraction, ties and dare_ties) and seed
    (dare_ties' masks). `linear` takes per-expert weights instead.

    The key leaves out the parameters the method does not read (MergeMethod.reads), so
    equal merges share one journal line; a method that does not say keys on all of them."""

    method: str
    scale: float = 1.0
    density: float = 1.0
    seed: int = 0
    weights: Optional[tuple[float, ...]] = None
    type_name: ClassVar[str] = "delta_merge"
    field: ClassVar[str] = "merge"

    def __post_init__(self) -> None:
        merges.method(self.method)  # ValueError naming the known ones
        if not 0 < self.density <= 1:
            raise ValueError("density must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        reads = merges.method(self.method).reads
        d: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if (f.name in merges.PARAMETERS and f.name not in reads) or value is None:
                continue
            d[f.name] = [float(w) for w in value] if f.name == "weights" else value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeltaMerge":
        d = dict(d)
        if d.get("weights") is not None:
            d["weights"] = tuple(float(w) for w in d["weights"])
        return cls(**d)

    def canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        return merge_hash(self.canonical())

    def payload(self) -> dict[str, Any]:
        return self.to_dict()

    @classmethod
    def from_payload(cls, payload: Any) -> "DeltaMerge":
        return cls.from_dict(payload)


def row_fields(candidate: Candidate) -> dict[str, Any]:
    """A compare row's candidate fields: every type's field, None but the candidate's own."""
    return {**{cls.field: None for cls in CANDIDATES.values()}, **candidate.to_json()}


def as_candidate(x: Any) -> Candidate:
    """A Candidate, or a sequence of floats taken as a coefficient row."""
    return x if isinstance(x, Candidate) else CoefficientRow.of(np.asarray(x, dtype=np.float64).ravel())


def as_candidates(xs: Any) -> list[Candidate]:
    """Candidates, or coefficient rows: a matrix, one row, or rows of different lengths
    (global and per-layer-group rows side by side)."""
    if isinstance(xs, Candidate):
        return [xs]
    if isinstance(xs, np.ndarray):
        return [CoefficientRow.of(row) for row in np.atleast_2d(xs.astype(np.float64))]
    xs = list(xs)
    if xs and np.isscalar(xs[0]):  # one row given as its numbers
        return [CoefficientRow.of(xs)]
    return [as_candidate(x) for x in xs]
