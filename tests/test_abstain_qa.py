"""abstain_qa: the official AbstainQA rule (evaluate.py, eval_type "AbstainQA"), checked
against a direct computation of it: transformers' greedy generate for the answer and the
self-reflection, the official parser and get_effective_reliability ported as written."""

import pytest
import torch

from modelswarm.tiny import make_base, write_jsonl
from modelswarm.objectives.abstain_qa import effective_reliability

from conftest import utility_of


def get_effective_reliability(correct_flags, abstain_flags):
    """evaluate.py, as written there."""
    answered_correct = 0
    answered_incorrect = 0
    for i in range(len(correct_flags)):
        if abstain_flags[i] == 0:
            if correct_flags[i] == 1:
                answered_correct += 1
            else:
                answered_incorrect += 1
    return (answered_correct - answered_incorrect) / len(correct_flags)


def multiple_choice_answer_parsing(instance_dict, output_text):
    """evaluate.py, as written there."""
    for key in instance_dict["choices"].keys():
        if key in output_text[:5]:
            return key
    for key in instance_dict["choices"].keys():
        if key in output_text[-5:]:
            return key
    for key in instance_dict["choices"].keys():
        if instance_dict["choices"][key].lower() in output_text.lower():
            return key
    return "Z"


def official_abstain_qa(eval_data, generate):
    """The official loop; generate(prompt) is one greedy generation of 10 tokens, stripped."""
    prompts = [q["prompt"] for q in eval_data]
    outputs = [generate(p) for p in prompts]
    correct_flags = [int(q["answer"] == multiple_choice_answer_parsing(q, o)) for q, o in zip(eval_data, outputs)]
    new_prompts = [prompt + "\nProposed answer: " + output + "\nIs the proposed answer true or false? Directly answer "
                   "with true or false." for prompt, output in zip(prompts, outputs)]
    abstain_flags = [1 if "false" in generate(p).lower() else 0 for p in new_prompts]
    return get_effective_reliability(correct_flags, abstain_flags), correct_flags, abstain_flags


def rows(n=12):
    out = []
    for d in range(n):
        choices = [str((d + 1) % 10), str((d + 5) % 10), str((d + 7) % 10)]
        out.append({"question": f"{d % 10}^", "choices": choices, "answer": d % 3,
                    "prompt": f"A: {choices[0]}\nB: {choices[1]}\nC: {choices[2]}\n{d % 10}^"})
    return out


def as_official(row):
    """Our JSONL line as an official data/eval item: choices keyed by letter, the answer a letter."""
    return {"prompt": row["prompt"], "choices": dict(zip("ABC", row["choices"])), "answer": "ABC"[row["answer"]]}


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = make_base(tmp_path_factory.mktemp("lm"), seed=3)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_abstain_qa_is_the_official_effective_reliability_on_a_tiny_model(lm, tmp_path):
    model, tok = lm

    def generate(prompt):
        ids = tok(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()

    data = rows()
    path = write_jsonl(tmp_path / "mc.jsonl", data)
    util = utility_of("abstain_qa", data=str(path), max_new_tokens=10, batch_sequences=4, decode_rows=3)
    score = util.score(model, tok, util.load(path))
    want, correct, abstain = official_abstain_qa([as_official(r) for r in data], generate)
    assert score.value == pytest.approx(want)
    assert score.per_example == [0.0 if a else (1.0 if c else -1.0) for c, a in zip(correct, abstain)]
    assert score.counts == {"abstained": sum(abstain)}


class ScriptedEngine:
    """An engine whose generations are scripted by prompt: the abstain path without training a model."""

    def __init__(self, replies):
        self.replies, self.seen = replies, []

    def prompt_ids(self, text):
        return text

    def generate_texts(self, prompts, *, max_new_tokens):
        self.seen += list(prompts)
        return [self.replies(p) for p in prompts]


def test_a_reflection_that_says_false_abstains_as_officially(tmp_path):
    data = rows(8)
    answers = ["A", "B: x", "C", "the answer is B", "A", "zzzz", "C", "B"]
    verdicts = ["False.", "true", "FALSE", "I think it is false", "yes", "false", "no, it's false", "True!"]
    script = {}
    for r, a, v in zip(data, answers, verdicts):
        script[r["prompt"]] = a
        script[r["prompt"] + "\nProposed answer: " + a + "\nIs the proposed answer true or false? Directly answer "
               "with true or false."] = v
    path = write_jsonl(tmp_path / "mc.jsonl", data)
    util = utility_of("abstain_qa", data=str(path))
    engine = ScriptedEngine(script.__getitem__)
    score = util.score_with(engine, util.load(path))
    want, correct, abstain = official_abstain_qa([as_official(r) for r in data], script.__getitem__)
    assert abstain == [1, 0, 1, 1, 0, 1, 1, 0] and correct == [1, 1, 1, 0, 0, 0, 0, 1]  # every path exercised
    assert score.value == want == 1 / 8 == effective_reliability([bool(c) for c in correct], [bool(a) for a in abstain])
    assert len(engine.seen) == 2 * len(data)  # one answer and one reflection per question


def test_abstain_qa_reads_multiple_choice_data_with_the_official_prompt(tmp_path):
    path = write_jsonl(tmp_path / "mc.jsonl", [{"question": "2+2?", "choices": ["3", "4"], "answer": 1}])
    (ex,) = utility_of("abstain_qa", data=str(path)).load(path)
    assert ex["prompt"].endswith("A: 3\nB: 4\nThe answer is") and ex["labels"] == ["A", "B"]
