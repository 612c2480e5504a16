"""The `bo` row of `modelswarm compare` (optuna TPE, ask-tell) on the tiny world: the searches'
budget exactly, the searches' box, the uniform soup first, and the same seed the same search."""

import numpy as np
import pytest

from modelswarm.compare import DEFAULT_METHODS, METHODS
from modelswarm.compare.bo import BOUND
from modelswarm.compare.runner import run_compare
from modelswarm.config import load_config
from modelswarm.run.prepare import prepare

from conftest import write_config

pytestmark = pytest.mark.slow

SMALL_SWARM = {"size": 4, "max_iterations": 3, "patience": 3, "restart_patience": 2}


def bo_rows(world, tmp_path, name, **kw):
    path = write_config(tmp_path / f"{name}.yaml", world, tmp_path / "runs", name=name, swarm=SMALL_SWARM)
    prep = prepare(load_config(path), path)
    result = run_compare(prep, methods=["bo"], log=lambda m: None, **kw)
    return prep, [r for r in result["rows"] if r["method"] == "bo"]


def test_bo_is_a_seeded_search_in_the_default_table():
    assert METHODS["bo"].kind == "search" and METHODS["bo"].seeded
    assert "bo" in DEFAULT_METHODS


def test_bo_uses_exactly_the_budget_inside_the_box_from_the_uniform_soup(world, ray_session, tmp_path):
    prep, rows = bo_rows(world, tmp_path, "b", budget=7, seeds=2)
    n = len(prep.bank.names)
    assert [r["seed"] for r in rows] == [0, 1]
    for row in rows:
        assert row["evaluations"] == 7 and len(row["curve"]) == 7
        assert max(x for x in row["curve"] if x is not None) == pytest.approx(row["val"])
        assert len(row["coeffs"]) == n and np.all(np.abs(row["coeffs"]) <= BOUND)
    assert rows[0]["coeffs"] != rows[1]["coeffs"]  # another seed, another search
    assert all(r["curve"][0] == rows[0]["curve"][0] for r in rows)  # both start at the uniform soup


def test_bo_with_the_same_seed_searches_the_same_points(world, ray_session, tmp_path):
    _, (first,) = bo_rows(world, tmp_path, "one", budget=6)
    _, (again,) = bo_rows(world, tmp_path, "two", budget=6)
    assert again["computed"] == first["computed"] == 6  # two compare directories: both searched afresh
    assert again["coeffs"] == first["coeffs"] and again["curve"] == first["curve"] and again["val"] == first["val"]
