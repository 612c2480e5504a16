"""`modelswarm compare` on the tiny world: every method runs on one pool, the searches get
exactly the swarm's count (or --budget), seeds give a spread, a killed compare resumes
without scoring anything twice, and the winner (or a merge) exports and loads."""

import dataclasses
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from modelswarm.compare import DEFAULT_METHODS, METHODS
from modelswarm.compare.runner import run_compare
from modelswarm.config import load_config
from modelswarm.run.prepare import prepare
from modelswarm.search.state import RunDir
from modelswarm.export.verify import score_checkpoint

from conftest import write_config

pytestmark = pytest.mark.slow

SMALL_SWARM = {"size": 4, "max_iterations": 3, "patience": 3, "restart_patience": 2}


@pytest.fixture(scope="module")
def compared(world, ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    path = write_config(tmp / "c.yaml", world, tmp / "runs", name="cmp", swarm=SMALL_SWARM)
    prep = prepare(load_config(path), path)
    result = run_compare(prep, log=lambda m: None)
    return prep, path, tmp / "runs" / "cmp-compare", result


def rows_of(result, method):
    return [r for r in result["rows"] if r["method"] == method]


def test_every_method_answers_with_sane_scores(compared):
    prep, _, _, result = compared
    assert result["methods"] == DEFAULT_METHODS and set(DEFAULT_METHODS) == set(METHODS)
    for name in DEFAULT_METHODS:
        (row,) = rows_of(result, name)
        assert 0 <= row["val"] <= 1 and 0 <= row["test"] <= 1, name
        assert (row["coeffs"] is None) != (row["merge"] is None), name
        assert len(row["curve"]) == row["evaluations"], name
        assert max(x for x in row["curve"] if x is not None) == pytest.approx(row["val"]) or name == "lorahub", name
    n = len(prep.bank.names)
    best = rows_of(result, "best_expert")[0]
    assert best["val"] == max(best["info"]["experts_val"].values())
    assert rows_of(result, "uniform_soup")[0]["coeffs"] == pytest.approx([1 / n] * n)
    assert rows_of(result, "greedy_soup")[0]["val"] >= best["val"]  # it starts from the best expert
    assert rows_of(result, "ties")[0]["merge"]["method"] == "ties"


def test_the_searches_get_exactly_the_swarms_count(compared):
    _, _, cdir, result = compared
    swarm = rows_of(result, "model_swarms")[0]
    journal = RunDir(cdir / "model_swarms-seed0").read_journal()
    assert swarm["evaluations"] == len([e for e in journal if e.split == "val" and e.iteration is not None])
    assert result["budget"] == {"searches": [swarm["evaluations"]], "from": "model_swarms"}
    for name in ("lorahub", "cma_es", "random_search"):
        assert rows_of(result, name)[0]["evaluations"] == swarm["evaluations"], name
    n = len(result["experts"])
    counts = {r["method"]: r["evaluations"] for r in result["rows"]}
    assert counts["best_expert"] == n and counts["uniform_soup"] == 1
    assert n <= counts["greedy_soup"] <= 2 * n - 1
    assert (counts["task_arithmetic"], counts["ties"], counts["dare_ties"]) == (5, 9, 9)


def test_compare_json_and_plot(compared):
    _, _, cdir, result = compared
    on_disk = json.loads((cdir / "compare.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert {"winner", "summary", "rows", "budget", "seeds", "machine"} <= set(on_disk)
    w = on_disk["winner"]
    assert w["val"] == pytest.approx(max(s["val"]["mean"] for s in on_disk["summary"].values()), abs=1e-6)
    for s in on_disk["summary"].values():
        assert {"val", "test", "evaluations", "seconds", "seeds"} <= set(s)
    assert (cdir / "compare.png").stat().st_size > 1000


def test_a_killed_compare_resumes_without_scoring_again(compared):
    prep, _, cdir, result = compared
    # a kill after the evaluations were journaled, before the rows and compare.json
    shutil.rmtree(cdir / "rows")
    (cdir / "compare.json").unlink()
    lines = (cdir / "evaluations.jsonl").read_text()
    swarm_lines = (cdir / "model_swarms-seed0" / "evaluations.jsonl").read_text()
    again = run_compare(prep, log=lambda m: None)
    assert (cdir / "evaluations.jsonl").read_text() == lines
    assert (cdir / "model_swarms-seed0" / "evaluations.jsonl").read_text() == swarm_lines
    assert all(r["computed"] == 0 for r in again["rows"])
    def strip(rows):  # all but the clock and what was computed this time
        return [{**{k: v for k, v in r.items() if k not in ("seconds", "computed")},
                 "info": {k: v for k, v in r["info"].items() if k != "seconds"}} for r in rows]

    assert strip(again["rows"]) == strip(result["rows"])


def test_a_compare_directory_refuses_a_config_that_scores_differently(compared):
    from modelswarm.errors import UserError

    prep, _, _, _ = compared
    other = prep.config.replace(workers=prep.config.workers.replace(dtype="bfloat16"))
    with pytest.raises(UserError, match="another 'workers.dtype'"):
        run_compare(dataclasses.replace(prep, config=other), log=lambda m: None)


def test_budget_and_seeds(world, ray_session, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="s", swarm=SMALL_SWARM)
    prep = prepare(load_config(path), path)
    result = run_compare(prep, methods=["uniform_soup,random_search", "cma_es", "dare_ties"], budget=7, seeds=2,
                         log=lambda m: None)
    assert result["methods"] == ["uniform_soup", "dare_ties", "cma_es", "random_search"]
    assert result["seeds"] == [0, 1]
    for name in ("cma_es", "random_search"):
        rows = rows_of(result, name)
        assert [r["seed"] for r in rows] == [0, 1] and all(r["evaluations"] == 7 for r in rows)
        s = result["summary"][name]
        vals = [r["val"] for r in rows]
        assert s["val"]["mean"] == pytest.approx(np.mean(vals)) and s["val"]["min"] == min(vals)
        assert s["val"]["std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-6)
    assert len(rows_of(result, "dare_ties")) == 2  # random masks: seeded
    assert len(rows_of(result, "uniform_soup")) == 1  # the same point for every seed: run once
    assert rows_of(result, "dare_ties")[0]["merge"]["seed"] != rows_of(result, "dare_ties")[1]["merge"]["seed"]
    # another budget searches again; random_search's first 5 points are its first 7's first 5: all journaled
    again = run_compare(prep, methods=["random_search"], budget=5, log=lambda m: None)
    (row,) = rows_of(again, "random_search")
    assert row["evaluations"] == 5 and row["computed"] == 0


def test_searches_without_a_budget_or_the_swarm_are_refused(world, tmp_path):
    from modelswarm.errors import UserError

    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="x")
    prep = prepare(load_config(path), path)
    with pytest.raises(UserError, match="budget"):
        run_compare(prep, methods=["lorahub"], log=lambda m: None)
    with pytest.raises(UserError, match="unknown method"):
        run_compare(prep, methods=["soup_of_the_day"], log=lambda m: None)


def test_the_winner_and_a_merge_export_and_load_with_their_scores(compared, tmp_path):
    prep, path, cdir, result = compared
    cfg = load_config(path)
    out = tmp_path / "winner"
    proc = subprocess.run([sys.executable, "-m", "modelswarm.cli", "export", str(cdir), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    w = result["winner"]
    assert score_checkpoint(cfg, out) == pytest.approx(w["val"], abs=1e-12)
    from modelswarm.compare.export import export_compare

    target, row = export_compare(cdir, tmp_path / "ties", method="ties")
    assert (target / "model.safetensors").is_file() and not (target / "adapter_config.json").exists()
    assert json.loads((target / "modelswarm.json").read_text())["merge"] == row["merge"]
    # a plain HF model now: the merged weights round like the scored ones (float32 both)
    assert math.isclose(score_checkpoint(cfg, target), row["val"], abs_tol=1e-12)
    assert math.isclose(score_checkpoint(cfg, target, "test"), row["test"], abs_tol=1e-12)


def test_the_layer_swarm_is_one_more_row_and_exports_an_adapter_with_its_score(compared, tmp_path):
    from modelswarm.compare.export import export_compare

    prep, path, cdir, result = compared
    (row,) = rows_of(result, "model_swarms_layers")
    assert row["kind"] == "swarm" and row["info"]["layer_groups"] == 2  # the tiny world has 2 layers
    assert len(row["coeffs"]) == 2 * len(prep.bank.names) and row["merge"] is None
    target, _ = export_compare(cdir, tmp_path / "layers", method="model_swarms_layers")
    assert (target / "adapter_config.json").is_file()
    assert score_checkpoint(load_config(path), target) == pytest.approx(row["val"], abs=1e-12)
