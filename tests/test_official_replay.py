"""The swarm follows the official control flow, checked against an independent replay.

`official_replay` is written from github BunsenFeng/model_swarm search.py (the main loop
and initialize_search_records) in plain Python, with its utility_scratchpad dictionary and
its checkpoint folders reduced to labels: a folder holds the label (iteration, particle)
of the position that was copied into it. It knows nothing of swarm.py. A scripted score
stream drives both; a None in the stream is an evaluation that did not happen (the official
dropN path: the particle keeps its previous utility), which is how the project treats a
failed evaluation. Both must restart the same particles in the same iterations, stop in the
same iteration, and end with the same personal bests, global best and global worst.
"""

import random

import numpy as np
import pytest

from modelswarm.config import SwarmParams
from modelswarm.search.swarm import Swarm


def official_replay(stream, n, patience, restart_patience, max_iteration):
    """stream(iteration, particle) -> score or None. Returns restarts, stop, labels, scratchpad."""
    pad = {"g": None, "g_worst": None, "g_history": []}
    folders = {}
    results = [stream(0, i) for i in range(n)]
    pad["g"], pad["g_worst"] = max(results), min(results)
    pad["g_history"].append(pad["g"])
    for i in range(n):
        pad[f"particle_{i}_now"] = results[i]
        pad[f"particle_{i}_best"] = results[i]
        pad[f"particle_{i}_history"] = [results[i]]
        folders[f"particle_{i}/now"] = folders[f"particle_{i}/personal_best"] = (0, i)
    folders["global_best"] = (0, results.index(max(results)))
    folders["global_worst"] = (0, results.index(min(results)))

    restarts = set()
    iter_count = 0
    while iter_count < max_iteration:
        iter_count += 1
        g_history = pad["g_history"]
        if len(g_history) > patience:
            g_history = g_history[-patience:]
            if max(g_history) == min(g_history):
                iter_count -= 1  # this iteration never ran
                break
        for i in range(n):
            history = pad[f"particle_{i}_history"]
            if len(history) - history.index(pad[f"particle_{i}_best"]) >= restart_patience:
                restarts.add((iter_count, i))
                folders[f"particle_{i}/now"] = folders[f"particle_{i}/personal_best"]
            folders[f"particle_{i}/now"] = (iter_count, i)  # particle_update moves it
        results = [stream(iter_count, i) for i in range(n)]
        for i in range(n):
            if results[i] is None:  # skipped: pull performance from the last step
                results[i] = pad[f"particle_{i}_now"]
        for i in range(n):
            pad[f"particle_{i}_now"] = results[i]
            pad[f"particle_{i}_history"].append(results[i])
            if results[i] > pad[f"particle_{i}_best"]:
                pad[f"particle_{i}_best"] = results[i]
                folders[f"particle_{i}/personal_best"] = folders[f"particle_{i}/now"]
        if max(results) > pad["g"]:
            pad["g"] = max(results)
            pad["g_history"].append(max(results))
            for i in range(n):
                if results[i] == pad["g"]:
                    folders["global_best"] = folders[f"particle_{i}/now"]
                    break
        else:
            pad["g_history"].append(pad["g"])
        if min(results) < pad["g_worst"]:
            pad["g_worst"] = min(results)
            for i in range(n):
                if results[i] == pad["g_worst"]:
                    folders["global_worst"] = folders[f"particle_{i}/now"]
    return restarts, iter_count, folders, pad


def project_run(stream, n_experts, params, seed=0):
    """The same stream through Swarm; positions recorded by label (iteration, particle)."""
    s = Swarm.create(n_experts, params, seed)
    at = {(0, i): s.x[i].copy() for i in range(s.size)}
    first = np.array([stream(0, i) for i in range(s.size)], dtype=np.float64)
    s.start(first)
    restarts = set()
    while not s.done:
        x = s.propose()
        t = s.iteration + 1
        restarts |= {(t, int(i)) for i in np.flatnonzero(s.restarted)}
        at.update({(t, i): x[i].copy() for i in range(s.size)})
        s.record(np.array([np.nan if stream(t, i) is None else stream(t, i) for i in range(s.size)]))
    return s, restarts, at


def scripted(seed, fail_rate, levels, drift=0.0):
    rng = random.Random(seed)
    table = {}

    def stream(t, i):
        if (t, i) not in table:  # discrete levels make ties common; failures never at the start
            fail = t > 0 and rng.random() < fail_rate
            table[t, i] = None if fail else rng.randrange(levels) / levels + drift * t * rng.randrange(2)
        return table[t, i]

    return stream


# seed, failure rate, score levels, upward drift per iteration, patience, restart patience
CASES = [(0, 0.0, 5, 0.0, 4, 2), (1, 0.2, 4, 0.01, 5, 3), (2, 0.5, 3, 0.0, 6, 2), (3, 0.1, 8, 0.01, 10, 5),
         (4, 0.95, 5, 0.0, 3, 2), (5, 0.1, 2, 0.05, 5, 2), (6, 0.3, 3, 0.1, 5, 1)]


@pytest.mark.parametrize("seed, fail_rate, levels, drift, patience, restart_patience", CASES)
def test_the_swarm_replays_the_official_control_flow(seed, fail_rate, levels, drift, patience, restart_patience):
    n_experts, size, max_iter = 3, 7, 25
    stream = scripted(seed, fail_rate, levels, drift)
    params = SwarmParams(preset="paper", size=size, patience=patience, restart_patience=restart_patience,
                         max_iterations=max_iter)
    s, restarts, at = project_run(stream, n_experts, params)
    ref_restarts, ref_stop, folders, pad = official_replay(stream, size, patience, restart_patience, max_iter)

    assert s.iteration == ref_stop
    assert restarts == ref_restarts
    assert s.history == pad["g_history"]
    assert s.g_score == pad["g"] and s.gw_score == pad["g_worst"]
    assert np.array_equal(s.g, at[folders["global_best"]])
    assert np.array_equal(s.gw, at[folders["global_worst"]])
    for i in range(size):
        assert s.p_scores[i] == pad[f"particle_{i}_best"]
        assert np.array_equal(s.p[i], at[folders[f"particle_{i}/personal_best"]])
        assert s.scores[i] == pad[f"particle_{i}_now"]


def test_the_cases_exercise_restarts_failures_and_both_stops():
    stops, restarted, failed = [], [], []
    for seed, fail_rate, levels, drift, patience, restart_patience in CASES:
        stream = scripted(seed, fail_rate, levels, drift)
        restarts, stop, _, _ = official_replay(stream, 7, patience, restart_patience, 25)
        stops.append(stop)
        restarted.append(bool(restarts))
        failed.append(any(stream(t, i) is None for t in range(1, stop + 1) for i in range(7)))
    assert min(stops) < 25 and max(stops) == 25
    assert all(restarted) and any(failed)


@pytest.mark.parametrize("seed, patience", [(0, 4), (3, 5), (5, 3)])
def test_the_paper_preset_restarts_where_the_scripts_fraction_of_patience_does(seed, patience):
    # the official scripts pass --restart_patience 0.67: the threshold is 0.67 x patience, a fraction
    stream = scripted(seed, 0.1, 3, 0.0)
    params = SwarmParams(preset="paper", size=7, patience=patience, max_iterations=25)
    s, restarts, _ = project_run(stream, 3, params)
    ref_restarts, ref_stop, _, pad = official_replay(stream, 7, patience, 0.67 * patience, 25)
    assert restarts == ref_restarts and ref_restarts
    assert s.iteration == ref_stop and s.history == pad["g_history"]
