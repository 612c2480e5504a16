"""The end-of-run analyses, against the official overall_metrics.py on small hand cases."""

import numpy as np

from modelswarm.report import analysis


def test_ensemble_members_take_the_top_k_in_index_order_with_ties_at_the_bar_to_lower_indices():
    assert analysis.ensemble_members([0.2, 0.9, 0.5, 0.5, 0.1], 3) == [1, 2, 3]
    assert analysis.ensemble_members([0.5, 0.9, 0.5, 0.5, 0.1], 3) == [0, 1, 2]
    assert analysis.ensemble_members([0.3, 0.4], 10) == [0, 1]  # fewer particles than k


def test_majority_vote_per_example_with_ties_to_the_first_member():
    answers = [[0, 1, 2], [0, 2, 1], [1, 2, 0]]
    assert analysis.majority_vote(answers) == [0, 2, 2]  # example 2: 2, 1, 0 all once: the first


def test_ensemble_accuracy_on_answers_and_on_marks():
    assert analysis.ensemble_accuracy([[0, 1], [0, 2], [1, 2]], golds=[0, 2]) == 1.0
    assert analysis.ensemble_accuracy([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], golds=None) == 0.5


def test_history_stats_count_improvements_and_the_last_change():
    assert analysis.history_stats([0.1, 0.1, 0.3, 0.3, 0.4, 0.4]) == {"improvements": 2, "last_change": 4}
    assert analysis.history_stats([0.1, 0.1]) == {"improvements": 0, "last_change": None}


def test_diamond_in_the_rough_is_the_last_particle_whose_best_scores_the_global_best():
    got = analysis.diamond_in_the_rough(np.array([0.5, 0.1, 0.2, np.nan]), np.array([0.5, 0.8, 0.8, 0.3]), 0.8)
    assert got == {"particle": 2, "starting_rank": 2, "ending_rank": 1, "swarm_size": 4}


def test_correctness_emergence_counts_questions_no_initial_particle_answers():
    initial = [[1, 0, 0, 0], [1, 1, 0, 0]]  # questions 2 and 3 unsolved at the start
    later = [(1, [0, 0, 1, 0]), (2, [1, 1, 0, 0]), (3, [0, 0, 1, 1])]
    got = analysis.correctness_emergence(initial, [1, 1, 1, 0], later, iterations=3)
    assert got == {"questions": 4, "unsolved_at_start": 2, "solved_by_global_best": 1,
                   "solved_by_any_particle_by_iteration": [1, 1, 2]}


# --- the end of a run as records (outcomes.py, summary.py), on a scripted scorer -----------------

import math
from types import SimpleNamespace

import pytest

from modelswarm.report import outcomes
from modelswarm.config import SwarmParams
from modelswarm.search.state import Evaluation, coeff_hash
from modelswarm.report.summary import build_summary
from modelswarm.search.swarm import Swarm

EXPERTS = ("a", "b", "c")
QUESTIONS = 6


class ScriptedEvaluations:
    """Evaluations' interface with a scripted scorer: question q is right when the coefficient
    of expert q % 3 (test: (q + 1) % 3) is above 0.4; `values` gives per-example scores instead
    of 0/1 marks, as a reward model would."""

    def __init__(self, values: bool = False):
        self.values, self.cache, self.computed, self.replayed, self.hits = values, {}, 0, 0, 0

    def score(self, rows, split="val", iteration=None, bounds=None, particles=None):
        out = []
        for row in np.asarray(rows):
            key = f"{split}:{coeff_hash(row)}"
            if key in self.cache:
                self.hits += 1
            else:
                shift = 0 if split == "val" else 1
                marks = [float(row[(q + shift) % 3] > 0.4) for q in range(QUESTIONS)]
                if self.values:
                    marks = [round(m * 0.5 + 0.1 * float(row.sum()), 6) for m in marks]
                self.cache[key] = Evaluation.from_dict(dict(iteration=iteration, particle=0, hash=key, coeffs=list(row),
                                             score=float(np.mean(marks)), seconds=0.0, per_example=marks, split=split))
                self.computed += 1
            out.append(self.cache[key])
        return out


def scripted_run(values: bool = False, keep_start: bool = True):
    params = SwarmParams(size=5, max_iterations=3, patience=10, ensemble_top_k=3)
    layout = SimpleNamespace(names=EXPERTS, kind="lora", keys=["x.lora_A.weight", "x.lora_B.weight"])
    prep = SimpleNamespace(
        config=SimpleNamespace(swarm=params, seed=0, name="scripted", utility=SimpleNamespace(kind="exact_match")),
        bank=SimpleNamespace(names=EXPERTS, layout=layout),
        splits={s: [{"prompt": str(q), "answer": "1"} for q in range(QUESTIONS)] for s in ("val", "test")})
    evals = ScriptedEvaluations(values)
    swarm = Swarm.create(len(EXPERTS), params, seed=0)
    swarm.start([e.score for e in evals.score(swarm.x, iteration=0)])
    while not swarm.done:
        x = swarm.propose()
        swarm.record([e.score for e in evals.score(x, iteration=swarm.iteration + 1)])
    if not keep_start:  # a snapshot written before the swarm kept its starting points
        swarm = Swarm.from_json({k: v for k, v in swarm.to_json().items() if k != "initial_x"}, params)
    return prep, swarm, evals


def test_the_starting_swarm_is_reported_as_the_official_overall_metrics_does():
    prep, swarm, evals = scripted_run()
    o = outcomes.compute_outcomes(prep, swarm, evals)
    first = int(np.nanargmax(swarm.initial_scores))  # starting_utility.index(max(starting_utility))
    assert o.starting_best.particle == first and o.starting_best.val.score == swarm.initial_scores[first]
    assert o.starting_best.test is evals.score(swarm.initial_x[first:first + 1], "test")[0]
    members = analysis.ensemble_members(list(swarm.initial_scores), 3)
    assert o.starting_ensemble.members == tuple(members)
    voted = analysis.majority_vote([evals.score(swarm.initial_x[i:i + 1], "test")[0].per_example for i in members])
    assert o.starting_ensemble.test == round(float(np.mean(voted)), 6)


def test_an_old_snapshot_without_starting_points_gives_the_same_outcomes():
    fresh = outcomes.compute_outcomes(*scripted_run())
    old = outcomes.compute_outcomes(*scripted_run(keep_start=False))
    assert old.starting_best == fresh.starting_best and old.starting_ensemble == fresh.starting_ensemble
    assert old.emergence == fresh.emergence


def test_summary_names_points_by_label_and_holds_the_starting_swarm():
    prep, swarm, evals = scripted_run()
    s = build_summary(prep, swarm, outcomes.compute_outcomes(prep, swarm, evals), 1.0, "best")
    assert list(s["baselines"]["val"]) == ["global best", "expert a", "expert b", "expert c", "uniform soup", "base model"]
    assert s["baselines"]["val"]["global best"] == s["best"]["score"]
    assert s["starting_best"]["particle"] == int(np.nanargmax(swarm.initial_scores))
    assert set(s["starting_ensemble"]) == {"members", "val", "test"}
    assert s["evaluations"]["computed"] == len(evals.cache)


def test_per_example_scores_vote_like_the_official_reward_model_and_judge_runs():
    prep, swarm, evals = scripted_run(values=True)
    o = outcomes.compute_outcomes(prep, swarm, evals)
    assert o.emergence is None  # scores are not 0/1 marks: no correctness emergence
    members = list(o.ensemble.members)
    voted = analysis.majority_vote([o.personal_bests[i].test.per_example for i in members])
    assert o.ensemble.test == round(float(np.mean(voted)), 6) and not math.isnan(o.ensemble.test)
