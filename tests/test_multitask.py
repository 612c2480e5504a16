"""multitask: parts scored by their own utilities on their own data, combined; per-part
scores and marks kept; bad parts refused with one line naming the key."""

import json
import subprocess
import sys

import pytest
import yaml

from modelswarm.config import config_from_dict
from modelswarm.errors import UserError
from modelswarm.tiny import make_base, write_jsonl
from modelswarm.objectives.multitask import PART, combine

from conftest import utility_of


def official_multitask(a: float, b: float) -> float:
    """The official objective (evaluate.py `evaluate`, eval_type "multitask"), as written there."""
    per_dataset_scores = [a, b]
    if sum(per_dataset_scores) == 0:
        per_dataset_scores = [0.01, 0.01]  # dummy scores
    return 2 * per_dataset_scores[0] * per_dataset_scores[1] / (per_dataset_scores[0] + per_dataset_scores[1])


def test_combine_rules():
    assert combine([0.2, 0.4, 0.8], "harmonic") == pytest.approx(3 / (5 + 2.5 + 1.25))
    assert combine([0.0, 0.9], "harmonic") == 0.0 and combine([0.0, 0.0, 0.5], "harmonic") == 0.0
    assert combine([0.0, 0.0, 0.0], "harmonic") == pytest.approx(0.01)  # every part the official dummy 0.01
    assert combine([0.2, 0.4, 0.9], "mean") == pytest.approx(0.5) and combine([0.2, 0.4, 0.9], "min") == 0.2


GRID = [k / 10 for k in range(11)]
PAIRS = [(a, b) for a in GRID for b in GRID]


def test_two_part_harmonic_is_the_official_objective_to_the_bit_on_a_grid():
    for a, b in PAIRS + [(1 / 3, 2 / 7), (0.123, 0.456)]:
        assert combine([a, b], "harmonic") == official_multitask(a, b)


def test_two_part_harmonic_orders_every_pair_of_particles_as_the_official_objective():
    def order(f, p, q):
        return (f(*p) > f(*q)) - (f(*p) < f(*q))

    ours = lambda a, b: combine([a, b], "harmonic")  # noqa: E731
    assert all(order(ours, p, q) == order(official_multitask, p, q) for p in PAIRS for q in PAIRS)
    # the case a "0 when all parts are 0" rule gets wrong: all zero ranks above a single zero part
    assert combine([0.0, 0.0], "harmonic") > combine([0.0, 0.7], "harmonic")
    assert official_multitask(0.0, 0.0) > official_multitask(0.0, 0.7)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = make_base(tmp_path_factory.mktemp("lm"), seed=5)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def parts_data(tmp_path):
    mc = write_jsonl(tmp_path / "digits.jsonl", [{"question": f"{d}^", "choices": [str(d), str((d + 1) % 10), "x"],
                                                  "answer": d % 3} for d in range(9)])
    em = write_jsonl(tmp_path / "echo.jsonl", [{"prompt": f"{d}=", "answer": str(d)} for d in range(7)])
    return mc, em


@pytest.mark.parametrize("how", ["harmonic", "mean", "min"])
def test_a_multitask_is_its_parts_scored_alone_then_combined(lm, tmp_path, how):
    model, tok = lm
    mc, em = parts_data(tmp_path)
    util = utility_of("multitask", combine=how, parts=[
        {"kind": "multiple_choice", "data": str(mc)},
        {"kind": "exact_match", "data": str(em), "match": "contains", "max_new_tokens": 3}])
    examples = util.load_split("val")
    assert [ex[PART] for ex in examples] == [0] * 9 + [1] * 7
    score = util.score(model, tok, examples)
    alone = [utility_of("multiple_choice", data=str(mc)), utility_of("exact_match", data=str(em), match="contains",
                                                                      max_new_tokens=3)]
    a, b = (u.score(model, tok, u.load_split("val")) for u in alone)
    assert score.parts == {"digits": a.value, "echo": b.value}
    assert score.value == pytest.approx(combine([a.value, b.value], how))
    assert score.per_example == a.per_example + b.per_example  # per-part marks, one part after the other
    assert score.answers is None  # exact_match gives no answers: the ensemble votes on the marks


def test_parts_without_test_data_have_no_test_split_and_names_stay_unique(tmp_path):
    mc, em = parts_data(tmp_path)
    util = utility_of("multitask", parts=[{"kind": "exact_match", "data": str(em)},
                                          {"kind": "exact_match", "data": str(em), "match": "contains"}])
    assert util.load_split("test") is None and util.names == ["echo", "echo-2"]
    with_test = utility_of("multitask", parts=[{"kind": "exact_match", "data": str(em), "test_data": str(em)},
                                               {"kind": "multiple_choice", "data": str(mc), "test_data": str(mc)}])
    assert len(with_test.load_split("test")) == 16


def test_parts_of_imported_data_are_named_by_their_task_folder(tmp_path):
    rows = [{"prompt": f"{d}=", "answer": str(d)} for d in range(3)]
    legal = [write_jsonl(tmp_path / task / "dev.jsonl", rows) for task in ("hearsay", "citation_prediction")]
    util = utility_of("multitask", parts=[{"kind": "exact_match", "data": str(p)} for p in legal])
    assert util.names == ["hearsay", "citation_prediction"]
    same = utility_of("multitask", parts=[{"kind": "exact_match", "data": str(legal[0])},
                                          {"kind": "exact_match", "data": str(tmp_path / "hearsay" / "dev.jsonl")},
                                          {"kind": "exact_match", "data": str(write_jsonl(tmp_path / "echo.jsonl", rows))}])
    assert same.names == ["hearsay", "hearsay-2", "echo"]


@pytest.mark.parametrize("parts, problem", [
    ([{"kind": "bleu", "data": "a"}, {"kind": "exact_match", "data": "b"}],
     "key 'utility.parts[0].kind' is 'bleu', an unknown utility"),
    ([{"kind": "exact_match", "data": "a", "mtch": "contains"}, {"kind": "exact_match", "data": "b"}],
     "unknown key 'utility.parts[0].mtch' (did you mean 'utility.parts[0].match'?)"),
    ([{"kind": "exact_match", "data": "a"}], "key 'utility.parts' needs at least 2 parts, got 1"),
    ([{"kind": "exact_match"}, {"kind": "exact_match", "data": "b"}], "missing required key 'utility.parts[0].data'"),
    ([{"kind": "exact_match", "data": "a", "test_data": "t"}, {"kind": "exact_match", "data": "b"}],
     "either every part has test_data or none has"),
    ([{"kind": "multitask", "parts": [{"kind": "exact_match", "data": "a"}, {"kind": "exact_match", "data": "b"}]},
      {"kind": "exact_match", "data": "b"}], "part 0 is a multitask: parts cannot nest"),
])
def test_bad_parts_are_one_line_errors_naming_the_key(parts, problem):
    with pytest.raises(UserError) as err:
        config_from_dict({"base_model": "b", "experts": "e", "utility": {"kind": "multitask", "parts": parts}}, "c.yaml")
    assert problem in str(err.value) and err.value.where == "c.yaml" and "\n" not in str(err.value)


def test_a_bad_part_file_is_found_before_any_worker_starts(tmp_path):
    """`modelswarm run` on a multitask whose second part's data does not fit its scoring: exit 2,
    one line naming file and line, nothing written (the utility is checked before the experts are read)."""
    mc, _ = parts_data(tmp_path)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "choices": ["x", "y"], "answer": 0, "prompt": "q? A: x"}])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"base_model": str(tmp_path / "none"), "experts": str(tmp_path / "none"),
                                   "runs_dir": str(tmp_path / "runs"), "utility": {"kind": "multitask", "parts": [
                                       {"kind": "multiple_choice", "data": str(mc)},
                                       {"kind": "multiple_choice", "data": str(bad), "scoring": "generate"}]}}))
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "run", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"{bad}:1" in r.stderr and "does not mention ['B']" in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_multitask_run_reports_parts_in_journal_and_summary(world, tmp_path, ray_session):
    """End to end on the tiny world: two halves of its validation set as two parts."""
    from conftest import write_config
    from modelswarm.config import load_config
    from modelswarm.run.prepare import prepare
    from modelswarm.run.coordinator import run_swarm
    from modelswarm.search.state import RunDir

    rows = [json.loads(line) for line in open(world["val"])]
    a, b = write_jsonl(tmp_path / "first.jsonl", rows[:30]), write_jsonl(tmp_path / "second.jsonl", rows[30:])
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                       swarm={"size": 4, "max_iterations": 2, "patience": 2})
    raw = yaml.safe_load(cfg.read_text())
    raw["utility"] = {"kind": "multitask", "combine": "harmonic",
                      "parts": [{"kind": "multiple_choice", "data": str(a)}, {"kind": "multiple_choice", "data": str(b)}]}
    cfg.write_text(yaml.safe_dump(raw))
    summary = run_swarm(prepare(load_config(cfg), cfg), live=False)
    journal = RunDir(tmp_path / "runs" / "t").read_journal()
    for ev in journal:
        assert set(ev.parts) == {"first", "second"}
        assert ev.score == pytest.approx(combine([ev.parts["first"], ev.parts["second"]], "harmonic"))
        assert len(ev.per_example) == 60
    assert set(summary["best"]["parts"]) == {"first", "second"}
    assert all("parts" in pb for pb in summary["personal_bests"])
    assert "correctness_emergence" in summary and "val" in summary["ensemble"]


def test_parts_and_counts_survive_the_journal_round_trip():
    from modelswarm.search.state import Evaluation

    ev = Evaluation.from_dict(dict(iteration=1, particle=0, hash="h", coeffs=[1.0], score=0.5, seconds=1.0,
                                   parts={"a": 0.25, "b": 1.0}, counts={"unparsable_ratings": 2}))
    back = Evaluation.from_dict(json.loads(ev.to_json()))
    assert back == ev
    old = json.loads(ev.to_json())
    del old["parts"], old["counts"]  # a journal line written before these fields existed
    assert Evaluation.from_dict(old).parts is None


def test_a_parts_side_model_error_names_the_part(tmp_path):
    mc, em = parts_data(tmp_path)
    util = utility_of("multitask", parts=[{"kind": "exact_match", "data": str(em)},
                                          {"kind": "reward_model", "data": str(em), "reward_model": str(tmp_path / "no")}])
    with pytest.raises(UserError, match="is not a local model directory") as err:
        util.check()
    assert err.value.where == "utility.parts[1].reward_model"


def test_an_older_run_directorys_multitask_config_with_params_under_each_part_still_loads():
    parts = [{"kind": "exact_match", "data": "/a", "batch_sequences": 16, "params": {"match": "contains"}},
             {"kind": "multiple_choice", "data": "/b", "params": {}}]
    cfg = config_from_dict({"base_model": "b", "experts": "e", "utility": {"kind": "multitask", "parts": parts}}, "c.yaml")
    assert cfg.utility.parts[0].match == "contains" and cfg.utility.parts[1].scoring == "loglik"
