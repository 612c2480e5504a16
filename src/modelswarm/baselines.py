"""The points every run is compared with, scored on the same pool and cache as the search.

Baselines are just coefficient rows: each expert (one-hot), the uniform soup (1/n each) and,
for LoRA experts, the base model (all zeros: A = B = 0). They are scored on the validation
split (the search objective) and, when the config has test_data, on the held-out test split.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np


def reference_points(layout) -> dict[str, np.ndarray]:
    n = len(layout.names)
    points = {f"expert {name}": row for name, row in zip(layout.names, np.eye(n))}
    points["uniform soup"] = np.full(n, 1.0 / n)
    if zero_is_base(layout):
        points["base model"] = np.zeros(n)
    return points


def zero_is_base(layout) -> bool:
    """All-zero coefficients are the base model only when the adapter holds nothing but A and
    B: zero would also wipe a modules_to_save copy or a trained bias, or a full model."""
    return layout.kind == "lora" and all(".lora_" in k for k in layout.keys)


def score_points(evals, points: dict[str, np.ndarray], split: str) -> dict[str, Any]:
    results = evals.score(list(points.values()), split)  # a layer run's best is longer than the experts' rows
    return dict(zip(points, results))


def baseline_table(prep, evals, extra: Optional[dict[str, np.ndarray]] = None) -> dict[str, Any]:
    """{split: {name: score}} plus the best single expert (chosen on validation) and the share
    of test questions that no expert answers but the first of `extra` does."""
    points = dict(extra or {})
    points.update(reference_points(prep.bank.layout))
    out: dict[str, Any] = {}
    val = score_points(evals, points, "val")
    out["val"] = {k: json_number(v.score) for k, v in val.items()}
    if any(v.parts for v in val.values()):  # multitask: each part's score, per model and split
        out["parts"] = {"val": {k: v.parts for k, v in val.items()}}
    experts = [k for k in points if k.startswith("expert ")]
    best_expert = max(experts, key=lambda k: -math.inf if val[k].failed else val[k].score)
    out["best_single_expert"] = best_expert.removeprefix("expert ")
    if "test" in prep.splits:
        test = score_points(evals, points, "test")
        out["test"] = {k: json_number(v.score) for k, v in test.items()}
        if "parts" in out:
            out["parts"]["test"] = {k: v.parts for k, v in test.items()}
        tasks = [ex.get("task") for ex in prep.splits["test"]]
        if all(tasks):
            out["test_by_task"] = {k: by_task(tasks, v.per_example) for k, v in test.items() if v.per_example}
        if extra:
            first = next(iter(extra))
            mats = [test[k].per_example for k in experts]
            mine = test[first].per_example
            if mine is not None and all(m is not None for m in mats):
                none_right = ~np.any(np.array(mats) > 0.5, axis=0)
                mine_right = np.array(mine) > 0.5
                out["test_solved_by_no_expert"] = float(np.mean(none_right & mine_right))
                out["test_solved_by_no_expert_count"] = int(np.sum(none_right & mine_right))
    return out


def by_task(tasks: list[str], correct: list[float]) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for t, c in zip(tasks, correct):
        acc.setdefault(t, []).append(c)
    return {t: round(sum(v) / len(v), 4) for t, v in sorted(acc.items())}


def json_number(x: float) -> Optional[float]:
    """A score for JSON: a failed (nan) or infinite one is null."""
    return None if math.isinf(x) or math.isnan(x) else float(x)
