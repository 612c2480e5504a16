"""The end-of-run analyses, against the official overall_metrics.py on small hand cases."""

import numpy as np

from modelswarm import analysis


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
