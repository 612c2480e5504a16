"""lm-evaluation-harness, both ways, on the tiny world: the `lm_eval` utility scores a particle
on the worker's resident composed model, and `modelswarm export --lm-eval-task DIR` writes
tasks over the run's own data with the lm_eval command that re-checks the exported particle.
Where the scoring rule is the same (multiple_choice by log-likelihood, equal-length choices;
exact_match on the first line), the tool's number and lm-eval's are equal. The tests that run
lm-eval need the `lmeval` extra and are slow (each lm_eval process indexes lm-eval's own task
library); no Ray: the run directory is written by the functions a run calls, its particles
scored by a worker's Evaluator in this process."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelswarm.config import load_config
from modelswarm.errors import UserError
from modelswarm.weights.experts import load_bank
from modelswarm.export.lm_eval import task_body
from modelswarm.search.state import RunDir
from modelswarm.search.swarm import Swarm
from modelswarm.objectives import make_utility, utility_config
from modelswarm.cluster.worker import Evaluator

from conftest import utility_of, write_config

NOT_INSTALLED = "lm-eval is the optional `lmeval` extra: pip install 'model-swarms[lmeval]'"

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# the tiny world's multiple-choice lines, as an lm-eval task: the question, then " " + choice
DIGITS_TASK = {"task": "digits", "output_type": "multiple_choice", "doc_to_text": "question",
               "doc_to_choice": "choices", "doc_to_target": "answer", "metric_list": [{"metric": "acc"}]}


def evaluator(world, cfg, splits) -> Evaluator:
    bank = load_bank(str(world["experts"]))
    return Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, splits, num_threads=1)


def make_run(world, tmp: Path, name: str, utility: dict) -> tuple[object, RunDir, np.ndarray]:
    """A run directory whose initial swarm a worker's Evaluator scored; returns (config, run, best)."""
    cfg = load_config(write_config(tmp / f"{name}.yaml", world, tmp / "runs", name=name, utility=utility,
                                   workers={"dtype": "float32"}))
    bank = load_bank(cfg.experts)
    rd = RunDir(cfg.run_dir)
    rd.create(cfg, tuple(bank.names), tuple(str(world["experts"] / n) for n in bank.names))
    ev = evaluator(world, cfg.utility, {"val": make_utility(cfg.utility).load_split("val")})
    swarm = Swarm.create(len(bank.names), cfg.swarm, seed=0)
    swarm.start(np.array([ev.evaluate(x).utility.value for x in swarm.x]))
    rd.save_state(swarm, {"status": "done"})
    return cfg, rd, swarm.g.copy()


def export_with_tasks(rd: RunDir, out: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "modelswarm.cli", "export", str(rd.path), "--lm-eval-task", str(out)],
                          capture_output=True, text=True, env={**os.environ, **OFFLINE})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return shlex.split((out / "lm_eval.txt").read_text())


def lm_eval_scores(cmd: list[str], tmp: Path) -> dict[str, float]:
    """Run the exported lm_eval command (on the CPU, results as JSON): task -> acc."""
    assert cmd[:3] == ["lm_eval", "--model", "hf"]
    out = tmp / "lm_eval_out"
    env = {**os.environ, **OFFLINE, "HF_DATASETS_CACHE": str(tmp / "datasets")}
    proc = subprocess.run([sys.executable, "-m", "lm_eval", *cmd[1:], "--device", "cpu", "--output_path", str(out)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    return {task: r["acc,none"] for task, r in json.loads(results.read_text())["results"].items()}


@pytest.fixture(scope="module")
def digits_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("task") / "digits.yaml"
    path.write_text(yaml.safe_dump(DIGITS_TASK))
    return path


@pytest.fixture(scope="module")
def mc_run(world, tmp_path_factory):
    pytest.importorskip("lm_eval", reason=NOT_INSTALLED)
    """A multiple_choice run (the tool's log-likelihood rule), exported with its lm-eval tasks."""
    tmp = tmp_path_factory.mktemp("mc")
    cfg, rd, best = make_run(world, tmp, "mc", {"kind": "multiple_choice"})
    cmd = export_with_tasks(rd, tmp / "tasks")
    return cfg, rd, best, cmd, lm_eval_scores(cmd, tmp)


@pytest.mark.slow
def test_the_lm_eval_utility_scores_the_resident_composed_model_as_multiple_choice_does(world, mc_run, digits_yaml):
    cfg, _, best, _, _ = mc_run
    splits = {"val": [json.loads(x) for x in world["val"].read_text().splitlines()],
              "test": [json.loads(x) for x in world["test"].read_text().splitlines()]}
    native = evaluator(world, cfg.utility, splits)
    harness = evaluator(world, utility_config(kind="lm_eval", task=str(digits_yaml), data=str(world["val"]),
                                              batch_sequences=32), splits)
    for split in ("val", "test"):
        ours, theirs = native.evaluate(best, split).utility, harness.evaluate(best, split).utility
        assert theirs.value == ours.value and theirs.per_example == ours.per_example
    again = harness.evaluate(best, "val").utility  # the same HFLM over the same, recomposed module
    assert again.value == native.evaluate(best, "val").utility.value


@pytest.mark.slow
def test_lm_eval_rechecks_an_exported_multiple_choice_run_with_the_tools_numbers(world, mc_run):
    cfg, rd, best, cmd, theirs = mc_run
    ev = evaluator(world, cfg.utility, {"val": [json.loads(x) for x in world["val"].read_text().splitlines()],
                                        "test": [json.loads(x) for x in world["test"].read_text().splitlines()]})
    ours = {"validation": ev.evaluate(best, "val").utility.value, "test": ev.evaluate(best, "test").utility.value}
    print(f"\n{'split':<12}{'modelswarm':>12}{'lm_eval':>12}")
    for split, value in ours.items():
        print(f"{split:<12}{value:>12.4f}{theirs[f'modelswarm_mc_{split}']:>12.4f}")
    assert theirs == {"modelswarm_mc_validation": ours["validation"], "modelswarm_mc_test": ours["test"]}
    assert json.loads((rd.best_dir / "modelswarm.json").read_text())["score"] == ours["validation"]
    assert f"peft={rd.best_dir.resolve()}" in cmd[cmd.index("--model_args") + 1]


@pytest.mark.slow
def test_an_lm_eval_run_exports_its_own_task_and_lm_eval_agrees(world, digits_yaml, tmp_path):
    pytest.importorskip("lm_eval", reason=NOT_INSTALLED)
    cfg, rd, best = make_run(world, tmp_path, "harness", {"kind": "lm_eval", "task": str(digits_yaml)})
    cmd = export_with_tasks(rd, tmp_path / "tasks")
    task = yaml.safe_load((tmp_path / "tasks" / "modelswarm_harness_test.yaml").read_text())
    assert task["include"] == str(digits_yaml.resolve()) and task["dataset_path"] == "json"
    theirs = lm_eval_scores(cmd, tmp_path)
    ev = evaluator(world, cfg.utility, {"val": [json.loads(x) for x in world["val"].read_text().splitlines()],
                                        "test": [json.loads(x) for x in world["test"].read_text().splitlines()]})
    assert theirs == {"modelswarm_harness_validation": ev.evaluate(best, "val").utility.value,
                      "modelswarm_harness_test": ev.evaluate(best, "test").utility.value}


@pytest.mark.slow
def test_an_exact_match_first_line_run_exports_a_task_that_marks_each_answer_alike(world, tmp_path):
    from modelswarm.tiny import write_jsonl

    pytest.importorskip("lm_eval", reason=NOT_INSTALLED)
    names = load_bank(str(world["experts"])).names
    up = np.array([float(n == "up") for n in names])
    lines = [json.loads(x) for x in world["val"].read_text().splitlines()]
    data = write_jsonl(tmp_path / "em.jsonl", [{"prompt": ex["question"], "answer": ex["choices"][ex["answer"]]}
                                               for ex in lines])
    # one new token: the experts answer a bare digit, then ramble on the same line
    native = utility_config(kind="exact_match", data=str(data), max_new_tokens=1)
    harness = utility_config(kind="lm_eval", data=str(data), task={"task": "em", **task_body(make_utility(native))})
    examples = make_utility(native).load_split("val")
    values = []
    for x in (up, np.zeros_like(up)):  # the `up` expert (right on half the lines), the base model
        ours = evaluator(world, native, {"val": examples}).evaluate(x).utility
        theirs = evaluator(world, harness, {"val": examples}).evaluate(x).utility
        assert theirs.per_example == ours.per_example and theirs.value == ours.value
        values.append(ours.value)
    assert values[0] > values[1]


def test_export_refuses_rules_lm_eval_has_no_counterpart_for(tmp_path):
    for kind, keys in [("multiple_choice", {"scoring": "generate"}), ("exact_match", {"match": "contains"}),
                       ("exact_match", {"match": "last_words"})]:
        with pytest.raises(UserError, match="--lm-eval-task.*no lm-eval counterpart"):
            task_body(utility_of(kind, data=str(tmp_path / "val.jsonl"), **keys))


def test_an_lm_eval_task_given_by_path_is_exported_through_include_so_its_functions_resolve(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("task: t\noutput_type: multiple_choice\nprocess_docs: !function utils.process\n")
    assert task_body(utility_of("lm_eval", task=str(path), data=str(tmp_path / "val.jsonl"))) == {"include": str(path)}
    inline = task_body(utility_of("lm_eval", task={**DIGITS_TASK, "dataset_path": "x", "test_split": "y"},
                                  data=str(tmp_path / "val.jsonl")))
    assert inline == {k: v for k, v in DIGITS_TASK.items() if k != "task"}


def test_an_lm_eval_metric_or_filter_not_in_the_task_is_a_user_error(tmp_path):
    pytest.importorskip("lm_eval", reason=NOT_INSTALLED)
    with pytest.raises(UserError, match="utility.metric.*'f1' is not in the task's metric_list"):
        utility_of("lm_eval", task=DIGITS_TASK, metric="f1", data=str(tmp_path / "val.jsonl")).check()
    with pytest.raises(UserError, match="utility.filter"):
        utility_of("lm_eval", task=DIGITS_TASK, filter="strict", data=str(tmp_path / "val.jsonl")).check()
    with pytest.raises(UserError, match="utility.task.*not found"):
        utility_of("lm_eval", task=str(tmp_path / "missing.yaml"), data=str(tmp_path / "val.jsonl")).check()


def test_lm_eval_is_an_extra_outside_the_default_setup_whose_only_sdists_are_allowed_by_name():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["lmeval"] == ["lm-eval>=0.4.13"]
    makefile = (root / "Makefile").read_text()
    setup = makefile.split("$(VENV)/.installed: pyproject.toml")[1].split("touch $@")[0]
    assert "lmeval" not in setup
    assert "LMEVAL_SDISTS := rouge_score,sqlitedict,word2number\n" in makefile
    assert "--allow-sdist $(LMEVAL_SDISTS) $(TORCH) '.[test,demo,compare,lmeval]'" in makefile
