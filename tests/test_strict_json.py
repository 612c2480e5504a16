"""Every file a run writes is strict JSON, so readers other than Python's accept it; files
written before, with NaN in them, still resume."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_config
from modelswarm.config import load_config
from modelswarm.io import atomic_write_json, dumps, num
from modelswarm.search.state import RunDir
from modelswarm.search.swarm import Swarm

HERE = Path(__file__).parent


def refuse(name: str):
    raise ValueError(f"not strict JSON: {name}")


def strict_load(text: str):
    return json.loads(text, parse_constant=refuse)


def strict_files(folder: Path) -> list[Path]:
    """Parse every .json and .jsonl file below folder with a reader that refuses NaN and Infinity."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".json", ".jsonl"))
    for f in files:
        text = f.read_text()
        for line in (text.splitlines() if f.suffix == ".jsonl" else [text]):
            if line.strip():
                strict_load(line)
    return files


def test_non_finite_numbers_are_written_as_null_and_strings_and_read_back():
    text = dumps({"a": [1.0, math.nan, math.inf, -math.inf], "b": {"c": math.nan}, "d": (2.5,)})
    assert strict_load(text) == {"a": [1.0, None, "inf", "-inf"], "b": {"c": None}, "d": [2.5]}
    back = np.asarray(strict_load(text)["a"], dtype=np.float64)
    assert back[0] == 1.0 and math.isnan(back[1]) and back[2] == math.inf and back[3] == -math.inf
    assert math.isnan(num(None)) and num("-inf") == -math.inf and num(0.25) == 0.25


def test_atomic_json_files_are_strict(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"score": math.nan, "curve": [0.1, math.inf]})
    assert strict_load((tmp_path / "x.json").read_text()) == {"curve": [0.1, "inf"], "score": None}


def swarm_with_a_failure(tmp_path, world) -> tuple[Swarm, object]:
    cfg = load_config(write_config(tmp_path / "c.yaml", world, tmp_path / "runs"))
    swarm = Swarm.create(3, cfg.swarm, seed=0)
    scores = np.array([0.5] * swarm.size)
    scores[1] = math.nan  # a particle that failed for good
    swarm.start(scores)
    return swarm, cfg


def test_a_state_with_failed_particles_is_strict_and_resumes_equal(tmp_path, world):
    swarm, cfg = swarm_with_a_failure(tmp_path, world)
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.save_state(swarm, {"status": "running"})
    strict_files(rd.path)
    back, _ = rd.load_state(cfg)
    assert dumps(back.to_json(), sort_keys=True) == dumps(swarm.to_json(), sort_keys=True)
    assert math.isnan(back.scores[1]) and back.p_scores[1] == -math.inf  # failed: no personal best yet


def test_a_state_written_with_nan_by_an_older_version_still_resumes(tmp_path, world):
    swarm, cfg = swarm_with_a_failure(tmp_path, world)
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.state_file.write_text(json.dumps({"version": 2, "swarm": swarm.to_json(), "status": "running"}))
    assert "NaN" in rd.state_file.read_text()
    back, _ = rd.load_state(cfg)
    assert dumps(back.to_json(), sort_keys=True) == dumps(swarm.to_json(), sort_keys=True)


@pytest.mark.slow
def test_every_file_of_a_run_with_failures_is_strict_json(world, ray_session, tmp_path):
    from modelswarm.run.prepare import prepare
    from modelswarm.run.coordinator import run_swarm
    from modelswarm.export.particle import read_provenance

    shutil.copy(HERE / "flaky_utility.py", tmp_path / "flaky_utility.py")
    data = tmp_path / "ctl.jsonl"
    data.write_text(json.dumps({"bad": [0.0], "mode": "raise"}) + "\n")  # the base point fails
    cfg_path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                            utility={"kind": "python", "data": str(data), "function": "flaky_utility:score",
                                     "test_data": None},
                            swarm={"size": 5, "max_iterations": 2}, workers={"count": 2, "max_retries": 0})
    summary = run_swarm(prepare(load_config(cfg_path), cfg_path), live=False)
    run = tmp_path / "runs" / "t"
    journal = [json.loads(l) for l in (run / "evaluations.jsonl").read_text().splitlines()]
    assert summary["status"] == "finished" and any(e["error"] for e in journal)
    names = {p.name for p in strict_files(run)}
    assert {"state.json", "summary.json", "evaluations.jsonl", "iterations.jsonl", "modelswarm.json"} <= names
    assert read_provenance(run / "best")  # the adapter's own metadata copy parses too
