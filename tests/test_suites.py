"""The held-out suites' data (demo/suite3.py, demo/suite4.py): the same files on every build,
the sizes of suite2, no prompt in two splits, answers that follow the tasks, and suite4's lines
in the format `multiple_choice` reads. No model and no training here."""

import json

import pytest

from modelswarm.objectives import utility_config as UtilityConfig
from modelswarm.demo import suite3, suite4
from modelswarm.demo.build import write_data
from modelswarm.objectives import make_utility

SUITES = {"suite3": (suite3, None), "suite4": (suite4, suite4.to_choices)}


def build(tmp_path, name, sub="a"):
    module, eval_row = SUITES[name]
    out = tmp_path / sub
    counts = write_data(out, module.SKILLS, module.MIXED, eval_row, **module.SIZES)
    return out, counts


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def question(row):
    return row.get("question", row.get("prompt"))


@pytest.mark.parametrize("name", SUITES)
def test_a_suite_builds_the_same_files_every_time(tmp_path, name):
    a, _ = build(tmp_path, name, "a")
    b, _ = build(tmp_path, name, "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*.jsonl"))
    assert len(files) == 6  # four training files, val, test
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.mark.parametrize("name", SUITES)
def test_a_suite_has_suite2s_sizes_and_no_prompt_in_two_splits(tmp_path, name):
    module, _ = SUITES[name]
    out, counts = build(tmp_path, name)
    assert len(module.SKILLS) == 4 and len(module.MIXED) == 1
    for task in module.SKILLS:
        assert counts[task] == {"train": 400, "val": 40, "test": 80}
    (mixed,) = module.MIXED
    assert counts[mixed] == {"train": 0, "val": 40, "test": 80}
    val, test = lines(out / "val.jsonl"), lines(out / "test.jsonl")
    assert len(val) == 200 and len(test) == 400
    train = {r["prompt"] for t in module.SKILLS for r in lines(out / "train" / f"{t}.jsonl")}
    val_q, test_q = {question(r) for r in val}, {question(r) for r in test}
    assert len(val_q) == 200 and len(test_q) == 400
    assert not (train & val_q) and not (train & test_q) and not (val_q & test_q)


def test_suite3s_mixed_task_sits_on_the_sort_experts_plateau_and_forbids_the_tag(tmp_path):
    out, _ = build(tmp_path, "suite3")
    val = lines(out / "val.jsonl")
    mixed = [r for r in val if r["task"] == "sort_unique"]
    for r in mixed:
        ds = r["prompt"].split()[2:-1]
        assert r["answer"] == " ".join(sorted(set(ds))) and not r["answer"].endswith(suite3.TAG)
    # sorting with the repeats kept is already right where there are none: a wide plateau
    plateau = sum(len(set(r["prompt"].split()[2:-1])) == len(r["prompt"].split()[2:-1]) for r in mixed)
    assert 0.4 <= plateau / len(mixed) <= 0.8
    assert all(r["answer"].endswith(" " + suite3.TAG) for r in val if r["task"] in ("unique", "echo"))


def test_suite4s_lines_load_as_multiple_choice_with_the_right_answer_among_near_misses(tmp_path):
    out, _ = build(tmp_path, "suite4")
    util = make_utility(UtilityConfig(kind="multiple_choice", data=str(out / "val.jsonl")))
    for split in ("val", "test"):
        examples = util.load(out / f"{split}.jsonl")
        assert all(len(set(ex["choices"])) == suite4.N_CHOICES for ex in examples)
    val = lines(out / "val.jsonl")
    for r in (r for r in val if r["task"] == "prev_of_min"):
        first = min(suite4.listed(r["question"]))
        assert r["choices"][r["answer"]] == suite4.prev_letter(first)
        assert first in r["choices"]  # the min expert's habit is one of the wrong choices
    assert len({r["answer"] for r in val}) == suite4.N_CHOICES  # the right one is not always in one place
    # training files are the one trainer's {prompt, answer}: the answer is the right choice's text
    for r in lines(out / "train" / "min.jsonl"):
        assert set(r) == {"prompt", "answer", "task"} and r["answer"] == min(suite4.listed(r["prompt"]))
