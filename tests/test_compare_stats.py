"""The compare's statistics: each method's test difference to model_swarms with a paired
bootstrap interval over seeds and test examples, the winner's validation-to-test gap, and
how many seeds ended collapsed on a plateau; numbers from records, no model runs."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from modelswarm.weights.candidates import coeff_hash
from modelswarm.compare.runner import _stats
from modelswarm.compare.stats import (bootstrap_difference, collapse_count, collapsed, compare_stats, seed_pairs,
                                      winner_gap)
from modelswarm.compare.table import markdown, print_compare
from modelswarm.search.state import RunDir

RESAMPLES = 2_000  # enough for the specifications; compare.json uses stats.RESAMPLES


def row(method, seed, kind="search", seeded=True, val=0.5, test=0.5, **extra):
    return {"method": method, "kind": kind, "seed": seed, "seeded": seeded, "val": val, "test": test,
            "coeffs": [float(sum(map(ord, method))), float(seed)], "merge": None, "curve": [], "info": {}, **extra}


def marks_of(rng, n, p):
    return (rng.random(n) < p).astype(float).tolist()


# --- the test difference -----------------------------------------------------------------


def test_identical_methods_differ_by_zero_with_a_zero_width_interval():
    m = marks_of(np.random.default_rng(1), 50, 0.4)
    d = bootstrap_difference([(m, m), (m, m), (m, m)], resamples=RESAMPLES)
    assert (d["mean"], d["lo"], d["hi"]) == (0.0, 0.0, 0.0)
    assert (d["pairs"], d["examples"]) == (3, 50)


def test_a_method_better_on_every_example_gets_a_positive_interval():
    rng = np.random.default_rng(2)
    pairs = []
    for _ in range(3):
        ref = marks_of(rng, 40, 0.3)
        pairs.append(([min(1.0, x + 0.5) for x in ref], ref))  # at least as good everywhere, better on each 0
    d = bootstrap_difference(pairs, resamples=RESAMPLES)
    assert 0 < d["lo"] <= d["mean"] <= d["hi"]


def test_seeds_scored_on_one_test_set_share_its_example_noise():
    """Three seeds that all gave the same marks carry no more information than one: the
    interval must not narrow (resampling each seed's examples on its own would shrink it by √3)."""
    rng = np.random.default_rng(4)
    pair = (marks_of(rng, 200, 0.5), marks_of(rng, 200, 0.4))
    one, three = (bootstrap_difference([pair] * s, resamples=RESAMPLES) for s in (1, 3))
    assert three["hi"] - three["lo"] == pytest.approx(one["hi"] - one["lo"], rel=0.15)


def test_scores_that_are_not_the_mean_of_their_marks_get_no_difference_and_no_collapse_count():
    result = three_seed_result()
    marks = {(r["method"], r["seed"]): [0.25, 0.5, 1.0] for r in result["rows"]}  # per-example values, not 0/1
    final = {("model_swarms", s): [0.3] * 4 for s in (0, 1, 2)}
    st = compare_stats(result, marks, final, n_val=100, resamples=RESAMPLES)
    assert all(m == {"test_delta": None, "collapse": None} for m in st["methods"].values())


def test_a_population_with_one_finite_score_is_no_plateau():
    assert collapsed([0.3, None, float("nan")], n_val=100) is None


def test_a_worse_method_gets_a_negative_interval_that_holds_its_mean():
    rng = np.random.default_rng(3)
    pairs = [(marks_of(rng, 300, 0.2), marks_of(rng, 300, 0.6)) for _ in range(3)]
    d = bootstrap_difference(pairs, resamples=RESAMPLES)
    assert d["lo"] <= d["mean"] <= d["hi"] < 0
    assert d["mean"] == pytest.approx(np.mean([np.mean(a) - np.mean(b) for a, b in pairs]), abs=1e-6)


def test_the_bootstrap_is_deterministic():
    rng = np.random.default_rng(4)
    pairs = [(marks_of(rng, 80, 0.5), marks_of(rng, 80, 0.5)) for _ in range(3)]
    assert bootstrap_difference(pairs) == bootstrap_difference(pairs)  # the default seed and resamples


def test_seeds_are_resampled_too_so_a_gain_on_one_seed_of_three_is_not_sure():
    ref = [0.0] * 30
    pairs = [([1.0] * 30, ref), (ref, ref), (ref, ref)]  # better everywhere on seed 0, identical on the others
    d = bootstrap_difference(pairs, resamples=RESAMPLES)
    assert d["mean"] == pytest.approx(1 / 3, abs=1e-6)
    assert d["lo"] == 0.0 and d["hi"] == 1.0  # draws of seeds 1 and 2 only, and of seed 0 only


def test_pairs_are_taken_seed_by_seed_and_a_method_run_once_meets_every_swarm_seed():
    rows = [row("model_swarms", s, kind="swarm") for s in (0, 1, 2)] + [row("cma_es", s) for s in (0, 1, 2)]
    rows.append(row("best_expert", 0, kind="fixed", seeded=False))
    marks = {("model_swarms", s): [float(s)] * 4 for s in (0, 1, 2)}
    marks |= {("cma_es", s): [float(s) + 0.5] * 4 for s in (0, 1, 2)} | {("best_expert", 0): [2.0] * 4}
    assert seed_pairs(rows, marks, "cma_es") == [([s + 0.5] * 4, [float(s)] * 4) for s in (0, 1, 2)]
    assert [b for _, b in seed_pairs(rows, marks, "best_expert")] == [[0.0] * 4, [1.0] * 4, [2.0] * 4]
    d = bootstrap_difference(seed_pairs(rows, marks, "best_expert"), resamples=RESAMPLES)
    assert d["mean"] == pytest.approx(2.0 - 1.0)  # its score minus the swarm's mean


def test_a_seed_without_marks_is_left_out_and_none_at_all_gives_no_difference():
    rows = [row("model_swarms", s, kind="swarm") for s in (0, 1)] + [row("lorahub", s) for s in (0, 1)]
    marks = {("model_swarms", 0): [1.0, 0.0], ("model_swarms", 1): [1.0, 1.0], ("lorahub", 0): [1.0, 1.0],
             ("lorahub", 1): None}  # a failed test evaluation, or a utility without per-example marks
    assert seed_pairs(rows, marks, "lorahub") == [([1.0, 1.0], [1.0, 0.0])]
    assert bootstrap_difference([]) is None
    assert bootstrap_difference([([1.0, 0.0], [1.0])]) is None  # not the same examples


# --- collapse ----------------------------------------------------------------------------


def test_a_swarm_whose_last_iteration_scores_alike_is_collapsed():
    assert collapsed([0.31, 0.31, 0.31, 0.31], n_val=200) is True


def test_scores_within_one_example_count_as_one_plateau_and_two_examples_apart_do_not():
    n = 200
    assert collapsed([62 / n, 63 / n, 62 / n], n) is True
    assert collapsed([62 / n, 64 / n, 63 / n], n) is False


def test_failed_particles_are_ignored_and_no_score_at_all_is_unknown():
    assert collapsed([0.3, None, float("nan"), 0.3], 100) is True
    assert collapsed([None, float("nan")], 100) is None
    assert collapsed(None, 100) is None


def test_the_collapse_count_is_per_seed_from_the_swarms_final_scores():
    rows = [row("model_swarms", s, kind="swarm") for s in (0, 1, 2)]
    final = {("model_swarms", 0): [0.3] * 5, ("model_swarms", 1): [0.3, 0.2, 0.3, 0.3, 0.3],
             ("model_swarms", 2): [0.25] * 4 + [0.255]}
    assert collapse_count(rows, "model_swarms", final, n_val=100) == {"collapsed": 2, "of": 3}


def test_cma_es_is_judged_on_its_last_full_generation_and_the_other_searches_have_no_population():
    curve = [0.1, 0.2, 0.3, 0.4] + [0.5, 0.5, 0.5, 0.505] + [0.9, 0.1]  # two generations of 4, a cut third
    rows = [row("cma_es", 0, curve=curve, info={"popsize": 4, "generations": 2}),
            row("cma_es", 1, curve=[0.1, 0.2, 0.3, 0.4], info={"popsize": 4, "generations": 1}),
            row("lorahub", 0, curve=[0.3] * 8), row("best_expert", 0, kind="fixed", seeded=False)]
    assert collapse_count(rows, "cma_es", {}, n_val=100) == {"collapsed": 1, "of": 2}
    assert collapse_count(rows, "lorahub", {}, n_val=100) is None
    assert collapse_count(rows, "best_expert", {}, n_val=100) is None


# --- the winner's gap and compare.json's section -------------------------------------------


def summary(values):
    v = [x for x in values if x is not None]
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "n": len(v)}


def three_seed_result(winner="model_swarms"):
    rows = [row("model_swarms", s, kind="swarm", val=0.30 + s / 100, test=0.28 + s / 100) for s in (0, 1, 2)]
    rows += [row("cma_es", s, val=0.25, test=0.10, curve=[0.2] * 8, info={"popsize": 4, "generations": 2})
             for s in (0, 1, 2)]
    rows += [row("best_expert", 0, kind="fixed", seeded=False, val=0.2, test=0.21)]
    methods = ["model_swarms", "best_expert", "cma_es"]
    summ = {m: {"kind": next(r["kind"] for r in rows if r["method"] == m),
                "seeds": [r["seed"] for r in rows if r["method"] == m],
                "val": summary([r["val"] for r in rows if r["method"] == m]),
                "test": summary([r["test"] for r in rows if r["method"] == m]),
                "evaluations": 70, "seconds": 100.0} for m in methods}
    return {"name": "demo", "experts": ["e"] * 4, "budget": {"searches": 70, "from": "--budget"},
            "seeds": [0, 1, 2], "methods": methods, "summary": summ, "rows": rows,
            "winner": {"method": winner, "seed": 2}}


def test_the_winners_gap_is_validation_minus_test_of_the_means_and_per_seed():
    g = winner_gap(three_seed_result())
    assert g["method"] == "model_swarms" and g["mean"] == pytest.approx(0.02)
    assert g["seeds"] == {"0": pytest.approx(0.02), "1": pytest.approx(0.02), "2": pytest.approx(0.02)}
    assert winner_gap({**three_seed_result(), "winner": None}) is None


def with_stats(result):
    rng = np.random.default_rng(5)
    marks = {(r["method"], r["seed"]): marks_of(rng, 200, r["test"]) for r in result["rows"]}
    for r in result["rows"]:  # a row's test score is the mean of its marks, as a compare records it
        r["test"] = float(np.mean(marks[(r["method"], r["seed"])]))
    final = {("model_swarms", s): [0.3] * 4 if s else [0.3, 0.1, 0.3, 0.3] for s in (0, 1, 2)}
    result["stats"] = compare_stats(result, marks, final, n_val=100, resamples=RESAMPLES)
    return result


def test_compare_json_holds_a_difference_and_a_collapse_count_per_method():
    st = json.loads(json.dumps(with_stats(three_seed_result())["stats"]))  # as compare.json keeps it
    assert st["reference"] == "model_swarms" and st["collapse_within"] == 0.01
    assert st["methods"]["model_swarms"] == {"test_delta": None, "collapse": {"collapsed": 2, "of": 3}}
    assert st["methods"]["cma_es"]["collapse"] == {"collapsed": 3, "of": 3}
    assert st["methods"]["best_expert"]["collapse"] is None
    d = st["methods"]["cma_es"]["test_delta"]
    assert d["lo"] <= d["mean"] <= d["hi"] < 0 and d["pairs"] == 3
    assert st["methods"]["best_expert"]["test_delta"]["pairs"] == 3


def test_several_seeds_print_a_second_table_under_the_first():
    result = with_stats(three_seed_result())
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    print_compare(result, console)
    out = console.file.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    d = result["stats"]["methods"]["cma_es"]["test_delta"]
    assert f"{d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]" in out
    assert "Δ test vs model_swarms [95% CI]" in out and "reference" in out and "2/3" in out
    assert "winner model_swarms: validation − test gap +0.0200" in out
    md = markdown(result)
    assert "| method | Δ test vs model_swarms [95% CI] | collapsed |" in md and "| cma_es | " in md


def test_one_seed_or_an_older_compare_json_prints_the_main_table_alone():
    result = with_stats(three_seed_result())
    for r in ({**result, "seeds": [0]}, {k: v for k, v in result.items() if k != "stats"}):
        console = Console(file=io.StringIO(), width=120, force_terminal=False)
        print_compare(r, console)
        assert "Δ test" not in console.file.getvalue() and "Δ test" not in markdown(r)


# --- where the runner finds the marks ------------------------------------------------------


def test_the_runner_reads_test_marks_from_the_journal_and_final_scores_from_the_swarms_state(tmp_path):
    result = three_seed_result()
    swarm_dir = tmp_path / "model_swarms-seed0"
    swarm_dir.mkdir()
    (swarm_dir / "state.json").write_text(json.dumps({"swarm": {"scores": [0.3, 0.3, None]}}))
    lines = []
    for r in result["rows"]:
        if r["method"] == "model_swarms":
            r["info"] = {"run_dir": str(swarm_dir)} if r["seed"] == 0 else {"run_dir": str(tmp_path / "gone")}
        if r["method"] == "cma_es" and r["seed"] == 2:
            continue  # its test evaluation failed: no line
        marks = [1.0, 0.0, 1.0] if r["method"] == "model_swarms" else [1.0, 1.0, 1.0]
        r["test"] = float(np.mean(marks))
        lines.append({"iteration": None, "particle": 0, "hash": coeff_hash(r["coeffs"]), "coeffs": r["coeffs"],
                      "score": float(np.mean(marks)), "per_example": marks, "split": "test", "error": None})
    (tmp_path / "evaluations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    prep = SimpleNamespace(splits={"val": [{}] * 50, "test": [{}] * 3})
    st = _stats(prep, RunDir(tmp_path).read_journal(), result)
    assert st["collapse_within"] == 0.02
    assert st["methods"]["model_swarms"]["collapse"] == {"collapsed": 1, "of": 1}  # the others kept no state
    assert st["methods"]["cma_es"]["test_delta"]["pairs"] == 2
    assert st["methods"]["cma_es"]["test_delta"]["mean"] == pytest.approx(1 / 3, abs=1e-6)
