"""What every method of `modelswarm compare` sees: the Context, the registry, the Outcome.

A method is a function `run(ctx) -> Outcome`, registered with @register(name, kind). It asks
for validation scores only through ctx.score (candidates.py: coefficient rows, the swarm's
composition, as a matrix or as candidates, or delta-space merges); each call counts every
candidate it asks for, cached or not (the count is what the method used; the shared
journal only saves time). Searches
(kind "search") get ctx.budget evaluations and must not ask for more: asking past it
raises BudgetExceeded. Test scoring is the runner's, after the method, and is not counted.

kinds: "swarm" (model_swarms: sets the searches' budget), "search" (gets the budget),
"fixed" (a set number of evaluations: experts, soups), "merge" (a documented grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..weights.candidates import as_candidate, as_candidates

METHODS: dict[str, "Method"] = {}
KINDS = ("swarm", "fixed", "merge", "search")


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    run: Callable[["Context"], "Outcome"]
    doc: str
    seeded: bool  # False: the same answer for every seed, so it runs once


def register(name: str, kind: str, seeded: Optional[bool] = None) -> Callable:
    """seeded defaults to True for searches and the swarm, False for fixed points and grids."""
    assert kind in KINDS, kind

    def deco(fn: Callable[["Context"], "Outcome"]) -> Callable:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        METHODS[name] = Method(name, kind, fn, doc, kind in ("swarm", "search") if seeded is None else seeded)
        return fn

    return deco


class BudgetExceeded(RuntimeError):
    pass


@dataclass
class Outcome:
    """A method's answer (a candidate; coefficients given as numbers become a row) and its
    validation score; info: anything worth keeping (the grid, the soup, ...)."""

    val: float
    candidate: Any  # candidates.Candidate, or a coefficient row's numbers
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.candidate = as_candidate(self.candidate)


@dataclass
class Context:
    prep: Any  # prepare.Prepared
    evals: Any  # evaluations.Evaluations, on the shared pool and the compare journal
    seed: int
    budget: Optional[int]  # for searches: validation evaluations they may use
    workers: int  # evaluator actors: how many rows a search should ask for at once
    dir: Path  # the compare directory
    pool: Any = None
    swarm_run: Optional[Path] = None  # model_swarms: an existing run directory to read instead
    log: Callable[[str], None] = print
    used: int = 0
    curve: list[float] = field(default_factory=list)  # validation score of each counted evaluation, in order

    @property
    def n(self) -> int:
        return len(self.prep.bank.names)

    @property
    def remaining(self) -> int:
        return max(0, (self.budget or 0) - self.used)

    def _count(self, k: int) -> None:
        if self.budget is not None and self.used + k > self.budget:
            raise BudgetExceeded(f"asked for {self.used + k} evaluations, budget {self.budget}")
        self.used += k

    def score(self, candidates: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Validation scores (nan: failed) of candidates, or of coefficient rows given as a
        matrix (or one row), counted."""
        cands = as_candidates(candidates)
        self._count(len(cands))
        scores = np.array([math.nan if e.failed else e.score for e in self.evals.score(cands, "val")])
        self.curve += scores.tolist()
        return scores


def best_of(scores: np.ndarray) -> int:
    """Index of the best score, failures (nan) last; ties go to the first asked."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    return int(np.argmax(s))
