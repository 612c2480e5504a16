"""Paper-style scoring options of the existing kinds: multiple_choice `scoring: generate`
(the official letter parser) and exact_match `match: contains | last_words`, checked
against hand computations on the outputs of transformers' own `generate`."""

import pytest
import torch

from modelswarm.errors import UserError
from modelswarm.tiny import write_jsonl
from modelswarm.objectives.exact_match import contains, last_words
from modelswarm.objectives.multiple_choice import parse_choice

from conftest import utility_of


class LM:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    """A tiny random Llama (character tokenizer): what it generates is arbitrary but fixed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modelswarm.tiny import make_base

    path = make_base(tmp_path_factory.mktemp("lm"), seed=3)
    return LM(AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path))


def hf_generate(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """The hand computation: transformers' greedy generate, one prompt at a time, stripped."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


@pytest.mark.parametrize("output, want", [
    ("A", 0), ("B: 4", 1), ("  C) red", 2),  # the key near the start
    ("I think it is probably B", 1),  # near the end
    ("xxxxxxxx green yyyyyyyyy", 1),  # the option text
    ("xxxxxxxxxxxxxxxx", None),  # nothing: no answer
    ("The answer is", None),  # no capital key in the first or last 5 characters
    ("A or B", 0),  # option order decides within a window
])
def test_the_official_letter_parser(output, want):
    assert parse_choice(["A", "B", "C"], ["blue", "green", "red"], output) == want


@pytest.mark.parametrize("output, want", [
    ("xxxxxxxx GREEN yyyyyyyyy", 1), ("it is Red, surely", 2),  # the text in another case than the option's
    ("the capital is paris", 3),  # an option in capitals found in a lower-case answer
])
def test_the_official_letter_parser_matches_option_text_in_any_case(output, want):
    # official: instance_dict["choices"][key].lower() in output_text.lower()
    assert parse_choice(["A", "B", "C", "D"], ["blue", "green", "red", "Paris"], output) == want


def test_contains_and_last_words_are_the_official_rules():
    assert contains("150", "Grace has 150 pennies.") and contains("15", "150")  # substring, as official
    assert not contains("Paris", "paris")  # case-sensitive, as official
    assert last_words("so the total is 7 apples in all", 5) == "7 apples in all"[0:0] + "is 7 apples in all"
    assert last_words("a b c d e f g", 5) == "c d e f g"
    assert last_words("  x y  ", 5) == "x y"


@pytest.mark.parametrize("match, rule", [
    ("contains", lambda answer, text: answer in text),
    ("last_words", lambda answer, text: answer in " ".join(text.split(" ")[-2:])),
])
def test_exact_match_modes_score_generate_outputs_by_the_official_rule(world, evaluator, tmp_path, match, rule):
    prompts = [f"{d}^" for d in range(10)] + [f"{d}{d}v" for d in range(5)]
    texts = [hf_generate(evaluator.model, evaluator.tokenizer, p, 6) for p in prompts]
    # every other answer is a piece of what the model says: near its start, or at its end
    rows = [{"prompt": p, "answer": (t[:2] if k % 4 == 0 else t[-2:]).strip() or "#" if k % 2 == 0 else "#"}
            for k, (p, t) in enumerate(zip(prompts, texts))]
    path = write_jsonl(tmp_path / "em.jsonl", rows)
    util = utility_of("exact_match", data=str(path), max_new_tokens=6, match=match, last_words=2, batch_sequences=4, decode_rows=3)
    examples = util.load(path)
    marks = [float(rule(r["answer"], t)) for r, t in zip(rows, texts)]
    score = util.score(evaluator.model, evaluator.tokenizer, examples)
    assert score.per_example == marks and score.value == pytest.approx(sum(marks) / len(marks))
    assert 0 < sum(marks) < len(marks)  # the check means something
    if match == "contains":  # rows stop once the answer is in: generated text is a prefix of the full one
        for k, text in util.decoded(evaluator.model, evaluator.tokenizer, examples, prune=True):
            assert texts[k].startswith(text.strip())


def test_exact_match_default_is_still_the_strict_first_line(world, evaluator, tmp_path):
    from modelswarm.objectives.exact_match import normalise

    texts = [hf_generate(evaluator.model, evaluator.tokenizer, f"{d}^", 6) for d in range(10)]
    answers = [(t.split("\n")[0] if d % 2 else t[:1]) or "#" for d, t in enumerate(texts)]
    path = write_jsonl(tmp_path / "em.jsonl", [{"prompt": f"{d}^", "answer": a} for d, a in enumerate(answers)])
    strict = utility_of("exact_match", data=str(path), max_new_tokens=6)
    assert strict.config.match == "first_line"
    want = [float(normalise(t) == normalise(a)) for t, a in zip(texts, answers)]
    assert strict.score(evaluator.model, evaluator.tokenizer, strict.load(path)).per_example == want


def test_multiple_choice_generate_parses_what_generate_produces(world, evaluator, tmp_path):
    rows = [{"question": f"{d}^", "choices": [str((d + 1) % 10), str((d + 5) % 10), str((d + 7) % 10)],
             "answer": 0, "prompt": f"A: {(d + 1) % 10}\nB: {(d + 5) % 10}\nC: {(d + 7) % 10}\n{d}^"} for d in range(10)]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    util = utility_of("multiple_choice", data=str(path), scoring="generate", max_new_tokens=5)
    score = util.score(evaluator.model, evaluator.tokenizer, util.load(path))
    picks = [parse_choice(["A", "B", "C"], r["choices"], hf_generate(evaluator.model, evaluator.tokenizer, r["prompt"], 5))
             for r in rows]
    assert score.answers == [-1 if p is None else p for p in picks]
    assert score.per_example == [float(p == 0) for p in picks]


def test_multiple_choice_generate_builds_the_official_prompt_without_one(tmp_path):
    path = write_jsonl(tmp_path / "mc.jsonl", [{"question": "2+2?", "choices": ["3", "4"], "answer": 1}])
    (ex,) = utility_of("multiple_choice", data=str(path), scoring="generate").load(path)
    assert ex["prompt"] == ("Please choose an option that best answers the question.\nQuestion: 2+2?\n"
                            "A: 3\nB: 4\nThe answer is") and ex["labels"] == ["A", "B"]
    (plain,) = utility_of("multiple_choice", data=str(path)).load(path)
    assert "prompt" not in plain  # log-likelihood scoring is unchanged


@pytest.mark.parametrize("row, problem", [
    ({"question": "q", "choices": ["x", "y"], "answer": 0, "prompt": "q? A: x"}, r"'prompt' does not mention \['B'\]"),
    ({"question": "q", "choices": ["x", "y"], "answer": 0, "labels": ["A", "A"]}, "2 distinct non-empty strings"),
    ({"question": "q", "choices": [str(i) for i in range(27)], "answer": 0}, "more than 26 choices"),
])
def test_data_that_does_not_fit_generate_scoring_names_file_and_line(tmp_path, row, problem):
    path = write_jsonl(tmp_path / "mc.jsonl", [row])
    with pytest.raises(UserError, match=problem) as err:
        utility_of("multiple_choice", data=str(path), scoring="generate").load(path)
    assert err.value.where == f"{path}:1"
