"""`modelswarm data import-official`: the official {dev, test} JSON as our JSONL, on hand-written files."""

import json
import subprocess
import sys

import pytest

from modelswarm.errors import UserError
from modelswarm.objectives.official_data import import_official, official_mc_prompt

MC = {
    "dataset": "mmlu",
    "dev": [{"question": "2+2?", "choices": {"A": "3", "B": "4"}, "answer": "B", "id": 7, "domain": "math"}],
    "test": [{"question": "Sky?", "choices": {"A": "blue", "B": "green", "C": "red"}, "answer": "A", "id": 8}],
}


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_multiple_choice_items_become_index_answers_with_the_official_prompt(tmp_path):
    src = tmp_path / "mmlu.json"
    src.write_text(json.dumps(MC))
    assert import_official(src, tmp_path / "out") == {"dev.jsonl": 1, "test.jsonl": 1}
    (dev,), (test,) = read(tmp_path / "out" / "dev.jsonl"), read(tmp_path / "out" / "test.jsonl")
    assert dev == {"question": "2+2?", "choices": ["3", "4"], "labels": ["A", "B"], "answer": 1, "id": 7,
                   "domain": "math",
                   "prompt": "Please choose an option that best answers the question.\nQuestion: 2+2?\n"
                             "A: 3\nB: 4\nThe answer is"}
    assert test["answer"] == 0 and test["labels"] == ["A", "B", "C"]


def test_the_official_prompt_variants():
    ch = {"A": "x", "B": "y"}
    assert official_mc_prompt("q", ch, "hellaswag").startswith("Please choose an option that best completes the sentence.\n")
    assert official_mc_prompt("q", ch, "knowledge_crosswords", "EXAMPLE") == "EXAMPLE\nQuestion: q\nA: x\nB: y\nThe answer is"


def test_exact_match_and_prompt_only_items(tmp_path):
    gsm = tmp_path / "gsm8k.json"
    gsm.write_text(json.dumps({"dataset": "GSM8k", "dev": [{"question": "1+1?", "answer": "2", "id": 0}],
                               "test": [{"question": "2+2?", "answer": 4}]}))
    import_official(gsm, tmp_path / "g")
    assert read(tmp_path / "g" / "dev.jsonl") == [{"prompt": "1+1?", "answer": "2", "id": 0}]
    assert read(tmp_path / "g" / "test.jsonl") == [{"prompt": "2+2?", "answer": "4"}]
    rm = tmp_path / "rm.json"
    rm.write_text(json.dumps({"dataset": "rm", "dev": [{"prompt": "Say hi", "id": 0}], "test": [{"prompt": "Bye"}]}))
    import_official(rm, tmp_path / "r")
    assert read(tmp_path / "r" / "dev.jsonl") == [{"prompt": "Say hi", "id": 0}]


@pytest.mark.parametrize("data, where, problem", [
    ({"dev": [], "test": [{"prompt": "p"}]}, "dev", "missing or empty"),
    ({"dev": [{"prompt": "p"}]}, "test", "missing or empty"),
    ({"dev": [{"question": "q", "choices": {"A": "x", "B": "y"}, "answer": "C"}], "test": [{"prompt": "p"}]},
     "dev[0]", "answer 'C' is not one of the option keys"),
    ({"dev": [{"id": 1}], "test": [{"prompt": "p"}]}, "dev[0]", "an item needs"),
])
def test_bad_files_are_one_line_errors_naming_file_and_item(tmp_path, data, where, problem):
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(data))
    with pytest.raises(UserError, match=problem) as err:
        import_official(src, tmp_path / "out")
    assert err.value.where == f"{src}: {where}"
    assert not (tmp_path / "out").exists()  # nothing written


def test_cli_imports_and_refuses_bad_input_with_exit_2(tmp_path):
    src = tmp_path / "mmlu.json"
    src.write_text(json.dumps(MC))
    run = lambda *a: subprocess.run([sys.executable, "-m", "modelswarm.cli", "data", "import-official", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True)
    ok = run(src, tmp_path / "out")
    assert ok.returncode == 0, ok.stderr
    assert "for utility.kind multiple_choice" in ok.stdout and (tmp_path / "out" / "test.jsonl").is_file()
    src.write_text("{not json")
    bad = run(src, tmp_path / "out2")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and str(src) in bad.stderr
