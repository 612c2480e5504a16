"""The PSO on coefficient vectors: each term of the update, the schedule, bests, restarts."""


import numpy as np
import pytest

from modelswarm.config import SwarmParams
from modelswarm.search.start import crossover_init, random_velocities
from modelswarm.search.swarm import Swarm, velocity_update

X = np.array([[1.0, 0.0], [0.0, 1.0]])
V = np.array([[0.2, -0.2], [-0.1, 0.1]])
P = np.array([[0.5, 0.5], [0.0, 1.0]])
G = np.array([0.3, 0.7])
GW = np.array([2.0, -1.0])
R = np.full((2, 4), 0.5)


def only(term: int) -> np.ndarray:
    phi = np.zeros(4)
    phi[term] = 0.7
    return phi


def test_inertia_term_alone_keeps_the_velocity():
    assert np.allclose(velocity_update(X, V, P, G, GW, R, only(0)), V)


def test_cognitive_term_alone_points_to_the_personal_best():
    assert np.allclose(velocity_update(X, V, P, G, GW, R, only(1)), P - X)


def test_social_term_alone_points_to_the_global_best():
    assert np.allclose(velocity_update(X, V, P, G, GW, R, only(2)), G - X)


def test_repel_term_alone_points_away_from_the_global_worst():
    assert np.allclose(velocity_update(X, V, P, G, GW, R, only(3)), X - GW)


def test_terms_are_weighted_by_r_times_phi_and_normalised():
    r = np.array([[0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.7, 0.6]])
    phi = np.array([0.3, 0.3, 0.5, 0.05])
    got = velocity_update(X, V, P, G, GW, r, phi)
    for i in range(2):
        w = r[i] * phi
        want = (w[0] * V[i] + w[1] * (P[i] - X[i]) + w[2] * (G - X[i]) - w[3] * (GW - X[i])) / w.sum()
        assert np.allclose(got[i], want)


def test_all_zero_draws_do_not_divide_by_zero():
    out = velocity_update(X, V, P, G, GW, np.zeros((2, 4)), np.array([0.3, 0.3, 0.5, 0.05]))
    assert np.all(out == 0)


def test_crossover_init_keeps_experts_and_adds_affine_children():
    rng = np.random.default_rng(0)
    x = crossover_init(3, 10, rng, max_weight=2.0)
    assert x.shape == (10, 3)
    assert np.array_equal(x[:3], np.eye(3))
    assert np.allclose(x.sum(axis=1), 1.0)  # children stay in the experts' affine span


def test_crossover_children_are_w_a_plus_one_minus_w_b():
    rng = np.random.default_rng(7)
    x = crossover_init(2, 3, np.random.default_rng(7), max_weight=2.0)
    a, b = rng.choice(2, size=2, replace=False)
    w = rng.uniform(0.0, 2.0)
    assert np.allclose(x[2], w * np.eye(2)[a] + (1 - w) * np.eye(2)[b])


def test_anchors_follow_the_experts_and_take_the_place_of_children():
    s = Swarm.create(3, SwarmParams(size=6, anchors=["uniform", "base"]), seed=0)
    assert np.array_equal(s.x[:3], np.eye(3))
    assert np.allclose(s.x[3], 1 / 3) and np.array_equal(s.x[4], np.zeros(3))
    assert s.size == 6  # one crossover child is left, and it may mix an anchor in


def test_the_base_anchor_is_skipped_where_zero_is_not_the_base_model():
    s = Swarm.create(3, SwarmParams(size=4, anchors=["base", "uniform"]), seed=0, base_point=False)
    assert np.allclose(s.x[3], 1 / 3)


def test_the_base_anchor_is_a_crossover_parent_so_several_starting_rows_leave_the_simplex():
    from modelswarm.search.start import off_the_simplex

    base = Swarm.create(3, SwarmParams(size=8), seed=0)  # swarm_configs/tiny.yaml's shape
    sums = base.x.sum(axis=1)
    assert off_the_simplex(base.x, 3) == int((~np.isclose(sums, 1.0)).sum()) == 4  # the base row and 3 children
    assert off_the_simplex(Swarm.create(3, SwarmParams(preset="paper", size=8), seed=0).x, 3) == 0
    layers = Swarm.create(3, SwarmParams(size=8, granularity="layers", layer_groups=2), seed=0)
    assert off_the_simplex(layers.x, 3) == 4


def test_anchors_leave_the_sum_of_coefficients_free():
    # the experts and their children all sum to 1, and so does every move between them:
    # only a point off that plane (the base model) lets the swarm scale the experts' deltas
    paper = Swarm.create(3, SwarmParams(preset="paper", size=8), seed=0)
    anchored = Swarm.create(3, SwarmParams(size=8, anchors=["base"]), seed=0)
    assert np.allclose(paper.x.sum(axis=1), 1.0)
    assert not np.allclose(anchored.x.sum(axis=1), 1.0)


def test_random_velocity_is_the_difference_to_another_particle():
    x = crossover_init(4, 8, np.random.default_rng(1), 2.0)
    v = random_velocities(x, np.random.default_rng(2))
    for i in range(8):
        diffs = [j for j in range(8) if j != i and np.allclose(v[i], x[j] - x[i])]
        assert diffs, f"v[{i}] is not x_j - x_i for any other j"


def make(**params) -> Swarm:
    return Swarm.create(3, SwarmParams(**{"size": 6, **params}), seed=0)


def test_default_size_is_the_papers_twenty_or_the_expert_count():
    assert Swarm.create(10, SwarmParams(), 0).size == 20  # the paper's 10 experts get 10 crossover children
    assert Swarm.create(25, SwarmParams(), 0).size == 25


def test_start_sets_personal_global_best_and_worst():
    s = make()
    scores = np.array([0.1, 0.5, 0.3, 0.2, 0.0, 0.4])
    s.start(scores)
    assert np.array_equal(s.p, s.x) and np.array_equal(s.p_scores, scores)
    assert s.g_score == 0.5 and np.array_equal(s.g, s.x[1])
    assert s.gw_score == 0.0 and np.array_equal(s.gw, s.x[4])


def test_best_velocity_init_points_to_the_global_best():
    s = make(velocity_init="best")
    s.start(np.array([0.1, 0.5, 0.3, 0.2, 0.0, 0.4]))
    assert np.allclose(s.v, s.x[1] - s.x)


def test_zero_velocity_init():
    assert np.all(make(velocity_init="zero").v == 0)


def test_step_is_x_plus_lambda_v_and_lambda_decays_to_its_floor():
    s = make(step_length=1.0, step_decay=0.5, step_min=0.2)
    s.start(np.arange(6.0))
    steps = []
    for _ in range(4):
        x_before, step = s.x.copy(), s.step
        x = s.propose()
        assert np.allclose(x, x_before + step * s.v)
        steps.append(step)
        s.record(np.arange(6.0))
    assert steps == [1.0, 0.5, 0.25, 0.2]


def test_the_papers_coefficients_stay_affine_through_the_search():
    s = make(preset="paper")
    s.start(np.random.default_rng(0).random(6))
    for k in range(5):
        s.propose()
        s.record(np.random.default_rng(k + 1).random(6))
    assert np.allclose(s.x.sum(axis=1), 1.0)


def test_record_updates_bests_and_the_all_time_worst():
    s = make()
    s.start(np.array([0.1, 0.5, 0.3, 0.2, 0.0, 0.4]))
    s.propose()
    s.record(np.array([0.2, 0.4, 0.9, 0.1, 0.05, 0.4]))
    assert s.p_scores.tolist() == [0.2, 0.5, 0.9, 0.2, 0.05, 0.4]
    assert s.g_score == 0.9 and np.array_equal(s.g, s.x[2])
    assert s.gw_score == 0.0  # still the initial worst: g_w is all-time
    assert s.best_at.tolist() == [1, 0, 1, 0, 1, 0]
    assert s.history == [0.5, 0.9]


def test_global_best_ties_go_to_the_first_particle_and_worst_ties_to_the_last():
    s = make()
    s.start(np.array([0.1, 0.5, 0.3, 0.2, 0.1, 0.4]))
    assert np.array_equal(s.gw, s.x[0])  # at the start the official code takes results.index(min)
    s.propose()
    s.record(np.array([0.0, 0.6, 0.6, 0.0, 0.3, 0.3]))
    assert np.array_equal(s.g, s.x[1])
    assert np.array_equal(s.gw, s.x[3])  # the official copy loop has no break: the last tie stays


def test_stray_particle_restarts_at_its_personal_best_with_zero_velocity():
    s = make(restart_patience=2, phi_v=0.5, phi_p=0.0, phi_g=1.0, phi_w=0.0)
    s.start(np.array([1.0, 0, 0, 0, 0, 0]))
    s.propose()
    assert not s.restarted.any()  # own history [s0]: the best is 1 entry old
    s.record(np.array([1.0, -1, -1, -1, -1, -1]))  # no particle beats its personal best
    p = s.p.copy()
    r_state = s.rng.bit_generator.state
    s.propose()  # own history [s0, s1]: the best is 2 entries old
    assert s.restarted.all() and s.restarts.tolist() == [1] * 6
    # restarted: x = p, v = 0, then the usual update from there
    rng = np.random.default_rng()
    rng.bit_generator.state = r_state
    r = rng.random((6, 4))
    want_v = velocity_update(p, np.zeros_like(p), p, s.g, s.gw, r, np.array([0.5, 0.0, 1.0, 0.0]))
    assert np.allclose(s.v, want_v)


def test_a_stray_particle_restarts_every_iteration_until_it_improves():
    s = make(restart_patience=2)
    s.start(np.zeros(6))
    counts = []
    for k in range(4):
        s.propose()
        counts.append(int(s.restarts[0]))
        s.record(np.array([-1.0 if k < 3 else 5.0, 0, 0, 0, 0, 0]))
    s.propose()
    counts.append(int(s.restarts[0]))
    assert counts == [0, 1, 2, 3, 3]  # restarted in iterations 2, 3 and 4; improved in 4


def test_no_restarts_when_switched_off():
    s = make(restart_patience=1, restart=False)
    run(s, 4)
    assert s.restarts.sum() == 0


def test_stops_when_the_last_patience_global_bests_are_equal():
    s = make(patience=2, max_iterations=10)
    s.start(np.ones(6))
    s.propose(); s.record(np.ones(6))
    assert not s.done  # history [1, 1]: the official check wants more than `patience` entries
    s.propose(); s.record(np.ones(6))
    assert s.done and s.iteration == 2
    s = make(patience=3, max_iterations=10)
    s.start(np.zeros(6))
    s.propose(); s.record(np.ones(6))  # improves in iteration 1: history [0, 1]
    s.propose(); s.record(np.ones(6))
    assert not s.done
    s.propose(); s.record(np.ones(6))  # [0, 1, 1, 1]: the last 3 are equal
    assert s.done and s.iteration == 3


def test_stops_at_max_iterations():
    s = make(patience=10, max_iterations=3)
    s.start(np.zeros(6))
    for k in range(3):
        assert not s.done
        s.propose(); s.record(np.full(6, k + 1.0))
    assert s.done


def test_a_failed_evaluation_counts_as_not_evaluated_and_keeps_the_previous_utility():
    s = make()
    s.start(np.array([0.1, 0.5, 0.3, 0.2, 0.0, 0.4]))
    s.propose()
    x1 = s.x.copy()
    s.record(np.array([np.nan, 0.45, np.nan, np.nan, np.nan, np.nan]))  # five failures
    assert s.scores.tolist() == [0.1, 0.45, 0.3, 0.2, 0.0, 0.4]
    assert s.gw_score == 0.0 and s.g_score == 0.5 and s.best_at.tolist() == [0] * 6
    s.propose()
    assert not np.array_equal(s.x, x1)  # the particles still move
    s.record(np.full(6, np.nan))  # an iteration in which every evaluation fails
    assert s.gw_score == 0.0 and s.g_score == 0.5 and s.history == [0.5, 0.5, 0.5]


def test_a_failed_initial_particle_never_becomes_best_or_worst():
    s = make()
    s.start(np.array([np.nan, 0.5, 0.3, 0.2, 0.1, 0.4]))
    assert np.array_equal(s.gw, s.x[4]) and s.p_scores[0] == -np.inf
    s.propose()
    s.record(np.array([np.nan, 0.5, 0.3, 0.2, 0.1, 0.4]))
    assert s.gw_score == 0.1 and np.isnan(s.scores[0])


def test_deterministic_updates_set_every_r_to_one_and_draw_nothing():
    s = make(weight_randomness=False)
    s.start(np.arange(6.0))
    x, v, p, g, gw = s.x.copy(), s.v.copy(), s.p.copy(), s.g.copy(), s.gw.copy()
    state = s.rng.bit_generator.state
    s.propose()
    phi = np.array([0.3, 0.3, 0.5, 0.05])
    assert np.allclose(s.v, velocity_update(x, v, p, g, gw, np.ones((6, 4)), phi))
    assert s.rng.bit_generator.state == state


def test_drop_particle_and_drop_iteration_skip_evaluations():
    s = make(drop_particle=0.1)
    s.start(np.arange(6.0))
    seen = []
    for _ in range(20):
        s.propose()
        seen.append(s.evaluate.copy())
        s.record(np.where(s.evaluate, 10.0, np.nan))
    share = np.mean(seen)
    assert 0.75 < share < 1.0  # about 90% evaluated
    s = make(drop_iteration=0.999)
    s.start(np.arange(6.0))
    s.propose()
    assert not s.evaluate.any()


def test_top_k_lists_distinct_personal_bests_best_first():
    s = make(top_k=3)
    s.start(np.array([0.1, 0.5, 0.3, 0.2, 0.0, 0.4]))
    top = s.top_k()
    assert [t[0] for t in top] == [0.5, 0.4, 0.3]
    assert np.array_equal(top[0][1], s.g)


def test_top_k_starts_with_the_global_best_even_on_ties():
    s = make(top_k=2)
    s.start(np.array([0.1, 0.2, 0.3, 0.2, 0.0, 0.1]))
    s.propose()
    s.record(np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0]))  # particle 0 ties the global best, particle 2
    assert np.array_equal(s.top_k(1)[0][1], s.g) and np.array_equal(s.g, s.p[2])


def run(s: Swarm, n: int, seed: int = 0) -> None:
    scores = np.random.default_rng(seed)
    if not s.started:
        s.start(scores.random(s.size))
    for _ in range(n):
        x = s.propose()
        s.record(-np.abs(x - 0.3).sum(axis=1))  # a smooth objective of the coefficients


def test_same_seed_same_trajectory_and_snapshot_resume_is_exact():
    a, b = make(), make()
    run(a, 6)
    run(b, 3)
    c = Swarm.from_json(b.to_json(), b.params)  # as if killed after iteration 3 and resumed
    run(c, 3)
    for f in ("x", "v", "p", "p_scores", "g", "gw", "restarts", "best_at"):
        assert np.array_equal(getattr(a, f), getattr(c, f)), f
    assert a.step == c.step and a.history == c.history


def test_a_resume_through_json_with_failures_and_drops_is_exact():
    import json

    def go(s, n, k0):
        for k in range(n):
            x = s.propose()
            scores = -np.abs(x - 0.3).sum(axis=1)
            scores[(k0 + k) % s.size] = np.nan  # one failure per iteration
            s.record(np.where(s.evaluate, scores, np.nan))

    a, b = make(drop_particle=0.2), make(drop_particle=0.2)
    for s in (a, b):
        s.start(np.array([np.nan, 0.5, 0.3, 0.2, 0.1, 0.4]))
    go(a, 6, 0)
    go(b, 3, 0)
    c = Swarm.from_json(json.loads(json.dumps(b.to_json())), b.params)
    go(c, 3, 3)
    for f in ("x", "v", "p", "p_scores", "g", "gw", "restarts", "best_at", "scores", "evaluate"):
        assert np.array_equal(getattr(a, f), getattr(c, f), equal_nan=f == "scores"), f
    assert a.history == c.history and a.step == c.step


def test_different_seeds_differ():
    a, b = Swarm.create(3, SwarmParams(size=6), 0), Swarm.create(3, SwarmParams(size=6), 1)
    assert not np.array_equal(a.x, b.x)


def test_snapshot_is_json_serialisable():
    import json

    s = make()
    run(s, 2)
    d = json.loads(json.dumps(s.to_json()))
    assert Swarm.from_json(d, s.params).params == s.params


@pytest.mark.parametrize("mode", ["random", "zero", "best"])
def test_velocity_modes_run(mode):
    s = make(velocity_init=mode)
    run(s, 3)
    assert np.isfinite(s.x).all()


def test_the_trace_has_one_entry_per_iteration_and_survives_a_snapshot():
    s = Swarm.create(3, SwarmParams(size=6), seed=0)
    s.start(np.array([0.1, 0.2, 0.3, 0.2, 0.1, 0.0]))
    for _ in range(3):
        s.propose()
        s.record(np.linspace(0.0, 0.5, 6))
    assert [t["iteration"] for t in s.trace] == [0, 1, 2, 3]
    first, last = s.trace[0], s.trace[-1]
    assert first["step_mean"] == 0.0 and first["best"] == 0.3 and first["evaluated"] == 6
    assert last["improved"] == 0 and last["best"] == 0.5  # the same scores again: no personal best rises
    assert s.trace[1]["improved"] == 3  # 0.3, 0.4, 0.5 beat 0.2, 0.1, 0.0; the rest do not
    assert Swarm.from_json(s.to_json(), s.params).trace == s.trace


def test_the_spread_measures_the_swarm_in_coefficient_space():
    from modelswarm.search.diagnostics import describe

    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    d = describe(1, x, g=x[0], scores=np.array([0.5, np.nan]), g_score=0.5, steps=np.array([[1.0, 0.0], [0.0, 0.0]]),
                 improved=1, restarts=0, evaluated=1)
    assert d["spread"] == 5.0 and d["to_best"] == 2.5  # the two are 5 apart; (0 + 5) / 2 from the best
    assert (d["step_mean"], d["step_max"], d["mean"]) == (0.5, 1.0, 0.5)
    collapsed = describe(2, np.ones((4, 2)), g=np.ones(2), scores=np.ones(4), g_score=1.0)
    assert collapsed["spread"] == 0.0 and collapsed["to_best"] == 0.0
