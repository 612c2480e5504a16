"""Utilities score a model on validation examples: batched, exact, strict about their input."""

import json

import pytest
import torch

from modelswarm.errors import UserError
from modelswarm.tiny import write_jsonl
from modelswarm.objectives import make_utility, utility_config
from modelswarm.objectives.exact_match import may_still_match, normalise
from modelswarm.engine.batching import length_batches
from modelswarm.engine.greedy import ROWS, VOCAB_SLICE, greedy_decode, greedy_tokens, tree_greedy_decode
from modelswarm.engine.models import load_tokenizer


def mc(world, **kw):
    return make_utility(utility_config(kind="multiple_choice", data=str(world["val"]), **kw))


def every_size(n: int) -> dict:
    """Every batching size set to n."""
    return dict(batch_sequences=n, decode_rows=n, head_rows=n)


def test_multiple_choice_is_the_same_for_any_batch_size_with_or_without_prefix_sharing(world, evaluator):
    evaluator.composer.apply([0.4, 0.1, 0.5])
    val = mc(world).load(world["val"])
    sizes = [every_size(1), every_size(7), every_size(64), dict(every_size(64), batch_tokens=40)]
    sizes += [dict(kw, prefix_sharing=False) for kw in sizes]
    results = [mc(world, **kw).score(evaluator.model, evaluator.tokenizer, val) for kw in sizes]
    assert all(r.per_example == results[0].per_example and r.value == results[0].value for r in results)


def test_batches_hold_similar_lengths_within_both_caps():
    lengths = [3, 9, 5, 9, 1, 7, 2]
    cfg = utility_config(kind="exact_match", data="x", batch_sequences=3, batch_tokens=20)
    batches = length_batches(lengths, cfg)
    assert sorted(k for b in batches for k in b) == list(range(7))
    assert [[lengths[k] for k in b] for b in batches] == [[9, 9], [7, 5], [3, 2, 1]]
    assert length_batches([50], cfg) == [[0]]  # longer than the cap: alone, never dropped


@pytest.mark.parametrize("sharing", [True, False])
def test_multiple_choice_matches_full_logits_log_likelihood(world, evaluator, sharing):
    """Both paths (prefix tree, padded rows) equal the plain full forward pass."""
    evaluator.composer.apply([0.0, 0.0, 1.0])
    util = mc(world, prefix_sharing=sharing, batch_tokens=16)
    examples = util.load(world["val"])[:12]
    got = util.choice_scores(evaluator.model, evaluator.tokenizer, examples)
    tok = evaluator.tokenizer
    for ex, row in zip(examples, got):
        for choice, score in zip(ex["choices"], row):
            p = tok(ex["question"])["input_ids"]
            c = tok(" " + choice, add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = evaluator.model(input_ids=torch.tensor([p + c])).logits[0]
            lp = torch.log_softmax(logits.float(), -1)
            want = sum(lp[len(p) - 1 + t, c[t]].item() for t in range(len(c))) / len(c)
            assert score == pytest.approx(want, abs=1e-5)


def test_multiple_choice_input_errors_name_file_and_line(tmp_path, world):
    util = mc(world)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 0}) + "\n{oops\n")
    with pytest.raises(UserError, match=f"{bad}:2: not valid JSON"):
        util.load(bad)
    bad.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 2}) + "\n")
    with pytest.raises(UserError, match=f"{bad}:1: answer 2 is outside the 2 choices"):
        util.load(bad)
    bad.write_text(json.dumps({"question": "q", "choices": ["a"], "answer": 0}) + "\n")
    with pytest.raises(UserError, match="at least 2"):
        util.load(bad)
    bad.write_text(json.dumps({"choices": ["a", "b"], "answer": 0}) + "\n")
    with pytest.raises(UserError, match="missing field 'question'"):
        util.load(bad)
    bad.write_text(json.dumps({"question": " ", "choices": ["a", "b"], "answer": 0}) + "\n")
    with pytest.raises(UserError, match=f"{bad}:1: field 'question' is empty"):
        util.load(bad)
    bad.write_text(json.dumps([1, 2]) + "\n")
    with pytest.raises(UserError, match="must be a JSON object"):
        util.load(bad)
    bad.write_text("\n\n")
    with pytest.raises(UserError, match="no examples"):
        util.load(bad)
    with pytest.raises(UserError, match="data file not found"):
        util.load(tmp_path / "missing.jsonl")


def test_max_examples_takes_the_first_n_validation_examples_and_leaves_the_test_split_whole(world):
    cut = make_utility(utility_config(kind="multiple_choice", data=str(world["val"]), test_data=str(world["test"]),
                                     max_examples=5))
    whole = mc(world)
    assert cut.load_split("val") == whole.load(world["val"])[:5]
    assert cut.load_split("test") == whole.load(world["test"])
    assert whole.load_split("test") is None  # no test_data configured


@pytest.mark.parametrize("got, want, same", [
    ("15", "15", True), ("150", "15", False), ("15", "150", False), (" 15.\n more text", "15", True),
    ("The answer is 15", "15", False), ('"Paris"', "paris", True), ("a  b", "A B", True),
])
def test_exact_match_normaliser_is_strict(got, want, same):
    assert (normalise(got) == normalise(want)) is same


def test_exact_match_generation_is_batch_invariant(world, evaluator, tmp_path):
    rows = [{"prompt": f"{d}^", "answer": str((d + 1) % 10)} for d in range(10)]
    rows += [{"prompt": f"{d}{d}v", "answer": str(d)} for d in range(5)]  # longer prompts: left padding
    path = write_jsonl(tmp_path / "em.jsonl", rows)
    evaluator.composer.apply([0.0, 0.0, 1.0])
    outs = []
    for bs, bt, sharing in ((1, None, True), (4, None, True), (32, None, True), (32, 7, True), (32, 7, False),
                            (1, None, False)):
        util = make_utility(utility_config(kind="exact_match", data=str(path), **every_size(bs), batch_tokens=bt,
                                          max_new_tokens=3, prefix_sharing=sharing))
        outs.append(util.generate(evaluator.model, evaluator.tokenizer, util.load(path)))
    assert all(out == outs[0] for out in outs)
    util = make_utility(utility_config(kind="exact_match", data=str(path), max_new_tokens=1))
    score = util.score(evaluator.model, evaluator.tokenizer, util.load(path))
    assert 0.0 <= score.value <= 1.0 and len(score.per_example) == 15


def em_rows():
    rows = [{"prompt": f"{d}^", "answer": str((d + 1) % 10)} for d in range(10)]
    rows += [{"prompt": f"{d}{d}v", "answer": str(d)} for d in range(5)]  # longer prompts: left padding
    rows += [{"prompt": f"{d}{d}=", "answer": f"{d}{d}"} for d in range(5)]  # multi-token answers
    return rows


@pytest.mark.parametrize("sharing", [False, True])
def test_greedy_decoding_produces_the_tokens_of_generate(world, evaluator, sharing):
    from transformers import GenerationConfig

    evaluator.composer.apply([0.3, 0.3, 0.4])
    tok = evaluator.tokenizer
    prompts = [tok(r["prompt"])["input_ids"] for r in em_rows()]
    common = dict(pad_id=tok.pad_token_id, stops={tok.eos_token_id}, max_new_tokens=4)
    if sharing:  # rows of at most 5 trie nodes, 3 rows per prefill batch, decode steps of 3 rows
        finished = tree_greedy_decode(evaluator.model, prompts, lambda n: [[0, 1, 2], list(range(3, len(n)))],
                                      cap=5, decode_rows=3, **common)
    else:
        batches = [[0, 3, 5, 19, 11], [1, 2, 4], [6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18]]  # mixed lengths
        finished = greedy_decode(evaluator.model, prompts, batches, **common)
    ours = [None] * len(prompts)
    for k, ids in finished:
        assert ours[k] is None
        ours[k] = ids
    gen = GenerationConfig(max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)
    for p, mine in zip(prompts, ours):  # one at a time: no padding on the reference side
        with torch.inference_mode():
            ref = evaluator.model.generate(input_ids=torch.tensor([p]), generation_config=gen)[0, len(p):]
        assert mine == ref.tolist()[:len(mine)] and (len(mine) == 4 or mine[-1] == tok.eos_token_id)


@pytest.mark.parametrize("bias", [False, True])
def test_greedy_tokens_are_the_argmax_of_the_whole_head(bias):
    # small integers: every logit is exact whatever the summation order, so the maxima tie
    # across vocabulary slices, and the lowest token id must win as it does in argmax
    g = torch.Generator().manual_seed(0)
    vocab = 2 * VOCAB_SLICE + 7  # three slices, the last a short one
    head = torch.nn.Linear(4, vocab, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randint(-1, 2, head.weight.shape, generator=g))
        if bias:
            head.bias.copy_(torch.randint(-1, 2, head.bias.shape, generator=g))
        hidden = torch.randint(-1, 2, (ROWS + 9, 4), generator=g).float()  # two blocks of rows
        logits = head(hidden)
        want = logits.argmax(-1).tolist()
        across = [len({int(i) // VOCAB_SLICE for i in (row == row.max()).nonzero()}) > 1 for row in logits]
        assert sum(across[ROWS:]) >= 3  # some maxima tie across slices: the test means something
        assert greedy_tokens(head, hidden) == want


def test_exact_match_stops_rows_early_without_changing_a_mark(world, evaluator, tmp_path):
    path = write_jsonl(tmp_path / "em.jsonl", em_rows())
    evaluator.composer.apply([0.2, 0.0, 0.8])
    util = make_utility(utility_config(kind="exact_match", data=str(path), **every_size(6), max_new_tokens=4))
    examples = util.load(path)
    full = util.generate(evaluator.model, evaluator.tokenizer, examples)
    marks = util.score(evaluator.model, evaluator.tokenizer, examples).per_example
    assert marks == [float(normalise(t) == normalise(ex["answer"])) for t, ex in zip(full, examples)]


def test_may_still_match_never_gives_up_on_a_text_that_ends_up_matching():
    import random

    rng = random.Random(0)
    alphabet = ["a", "b", "1", " ", ".", '"', "'", "A", "\n", "\t"]
    checked = 0
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        answer = normalise(text)
        if not answer:
            continue
        checked += 1
        for cut in range(len(text) + 1):
            assert may_still_match(text[:cut], answer), (text[:cut], text, answer)
    assert checked > 5000
    assert not may_still_match(" 8", "92") and not may_still_match("9", "8")
    assert may_still_match(' "9', "92") and may_still_match("92.", "92") and not may_still_match("921", "92")


def test_exact_match_input_errors(tmp_path, world):
    util = make_utility(utility_config(kind="exact_match", data="x"))
    bad = write_jsonl(tmp_path / "em.jsonl", [{"prompt": "p"}])
    with pytest.raises(UserError, match=":1: missing field 'answer'"):
        util.load(bad)


def test_python_utility_calls_the_users_function(world, evaluator, tmp_path, monkeypatch):
    (tmp_path / "myutil.py").write_text(
        "def score(model, tokenizer, examples):\n    return len(examples) / 10\n"
        "def nan(model, tokenizer, examples):\n    return float('nan')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = write_jsonl(tmp_path / "d.jsonl", [{"x": 1}, {"x": 2}])
    util = make_utility(utility_config(kind="python", data=str(data), function="myutil:score"))
    assert util.score(evaluator.model, evaluator.tokenizer, util.load(data)).value == 0.2
    with pytest.raises(ValueError, match="NaN"):
        bad = make_utility(utility_config(kind="python", data=str(data), function="myutil:nan"))
        bad.score(evaluator.model, evaluator.tokenizer, bad.load(data))
    with pytest.raises(UserError, match="has no function 'nope'"):
        make_utility(utility_config(kind="python", data=str(data), function="myutil:nope")).load(data)


def test_unknown_utility_kind(tmp_path):
    from modelswarm.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("base_model: b\nexperts: [x, y]\nutility: {kind: bleu, data: v}\n")
    with pytest.raises(UserError, match=r"c.yaml: key 'utility.kind' is 'bleu', an unknown utility \(have: abstain_qa, exact_match, "):
        load_config(path)


def test_chat_template_is_applied_when_the_tokenizer_has_one(world, tmp_path):
    from modelswarm.tiny import make_tokenizer
    from modelswarm.engine.prompts import prompt_ids

    tok = make_tokenizer(tmp_path / "tok", chat_template="{% for m in messages %}<{{ m['content'] }}>{% endfor %}")
    cfg = utility_config(kind="multiple_choice", data="x")
    assert tok.decode(prompt_ids(tok, "hi", cfg)) == "<hi>"
    assert tok.decode(prompt_ids(tok, "hi", cfg.replace(chat_template="off")), skip_special_tokens=True) == "hi"
    plain = load_tokenizer(str(world["base"]))
    with pytest.raises(UserError, match="no chat template"):
        prompt_ids(plain, "hi", cfg.replace(chat_template="on"))


def test_early_exit_stops_once_the_bound_is_out_of_reach(world, evaluator):
    """Off by default; on, a particle that cannot reach its bound gets an upper bound instead
    of its exact score, and one that can is scored exactly as without it."""
    evaluator.composer.apply([0.0, 1.0, 0.0])  # the 'same' expert: weak on this data
    examples = mc(world).load(world["val"])
    exact = mc(world).score(evaluator.model, evaluator.tokenizer, examples)
    assert mc(world).evaluate(evaluator.model, evaluator.tokenizer, examples, bound=0.99) == exact  # off
    early = mc(world, early_exit=True, **every_size(8))
    cut = early.evaluate(evaluator.model, evaluator.tokenizer, examples, bound=0.95)
    assert cut.early_exit and exact.value <= cut.value < 0.95 and cut.per_example is None
    full = early.evaluate(evaluator.model, evaluator.tokenizer, examples, bound=0.0)
    assert not full.early_exit and full.value == exact.value and full.per_example == exact.per_example


def test_exact_match_early_exit_is_exact_when_it_does_not_stop(world, evaluator, tmp_path):
    """Marks settle as rows finish, in any order: the bound is checked after each one."""
    path = write_jsonl(tmp_path / "em.jsonl", em_rows())
    evaluator.composer.apply([0.2, 0.0, 0.8])
    plain = make_utility(utility_config(kind="exact_match", data=str(path), **every_size(4), max_new_tokens=4))
    early = make_utility(utility_config(kind="exact_match", data=str(path), **every_size(4), max_new_tokens=4,
                                       early_exit=True))
    examples = plain.load(path)
    exact = plain.score(evaluator.model, evaluator.tokenizer, examples)
    assert early.evaluate(evaluator.model, evaluator.tokenizer, examples, bound=0.0) == exact
    cut = early.evaluate(evaluator.model, evaluator.tokenizer, examples, bound=exact.value + 0.5)
    assert cut.early_exit and cut.per_example is None and exact.value <= cut.value < exact.value + 0.5
