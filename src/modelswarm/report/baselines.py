"""The points every run is compared with, scored on the same pool and cache as the search.

Baselines are just coefficient rows: each expert (one-hot), the uniform soup (1/n each) and,
for LoRA experts, the base model (all zeros: A = B = 0). They are scored on the validation
split (the search objective) and, when the config has test_data, on the held-out test split.
A run scores its global best beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..search.state import Evaluation

KINDS = ("global_best", "expert", "uniform_soup", "base_model")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A point scored at the end: its kind (KINDS), the expert's name for kind "expert"."""

    kind: str
    coeffs: tuple[float, ...]
    expert: Optional[str] = None

    @property
    def label(self) -> str:
        """How summary.json and the tables name it."""
        return f"expert {self.expert}" if self.kind == "expert" else self.kind.replace("_", " ")


@dataclass(frozen=True, kw_only=True)
class Scored:
    reference: Reference
    val: Evaluation
    test: Optional[Evaluation] = None


@dataclass(frozen=True, kw_only=True)
class Baselines:
    """The reference points (a run's global best first) scored on validation and test."""

    rows: tuple[Scored, ...]
    best_expert: str  # the best single expert, chosen on validation
    has_test: bool
    test_tasks: Optional[tuple[str, ...]] = None  # each test example's task, where every one names it
    # test questions that no expert answers but the global best does (a run with marks only)
    solved_by_no_expert: Optional[int] = None
    test_questions: int = 0

    def row(self, kind: str) -> Optional[Scored]:
        return next((r for r in self.rows if r.reference.kind == kind), None)


def references(layout) -> list[Reference]:
    n = len(layout.names)
    refs = [Reference(kind="expert", expert=name, coeffs=tuple(row)) for name, row in zip(layout.names, np.eye(n))]
    refs.append(Reference(kind="uniform_soup", coeffs=(1.0 / n,) * n))
    if zero_is_base(layout):
        refs.append(Reference(kind="base_model", coeffs=(0.0,) * n))
    return refs


def reference_points(layout) -> dict[str, np.ndarray]:
    """The reference points by label."""
    return {r.label: np.array(r.coeffs) for r in references(layout)}


def zero_is_base(layout) -> bool:
    """All-zero coefficients are the base model only when the adapter holds nothing but A and
    B: zero would also wipe a modules_to_save copy or a trained bias, or a full model."""
    return layout.kind == "lora" and all(".lora_" in k for k in layout.keys)


def score_baselines(prep, evals, best: Optional[np.ndarray] = None) -> Baselines:
    """Each reference point (and `best`, the global best, first) on validation and test."""
    refs = ([Reference(kind="global_best", coeffs=tuple(float(c) for c in best))] if best is not None else [])
    refs += references(prep.bank.layout)
    rows = [np.array(r.coeffs) for r in refs]  # a layer run's best is longer than the experts' rows
    val = evals.score(rows, "val")
    has_test = "test" in prep.splits
    test = evals.score(rows, "test") if has_test else [None] * len(refs)
    scored = tuple(Scored(reference=r, val=v, test=t) for r, v, t in zip(refs, val, test))
    experts = [s for s in scored if s.reference.kind == "expert"]
    best_expert = max(experts, key=lambda s: -math.inf if s.val.failed else s.val.score).reference.expert
    tasks = tuple(ex.get("task") for ex in prep.splits["test"]) if has_test else ()
    solved = None
    if has_test and best is not None:
        mats = [s.test.per_example for s in experts]
        mine = scored[0].test.per_example
        if mine is not None and all(m is not None and set(m) <= {0.0, 1.0} for m in [*mats, mine]):
            none_right = ~np.any(np.array(mats) > 0.5, axis=0)
            solved = int(np.sum(none_right & (np.array(mine) > 0.5)))
    return Baselines(rows=scored, best_expert=best_expert, has_test=has_test,
                     test_tasks=tasks if tasks and all(tasks) else None, solved_by_no_expert=solved,
                     test_questions=len(tasks))
