"""reward_model and llm_judge on tiny random models built here: a tiny Llama answers, a tiny
LlamaForSequenceClassification (one logit) rewards, a tiny causal LM judges. Scores are
checked against plain hand computations on transformers' own generate and forward."""

import pytest
import torch

from modelswarm.errors import UserError
from modelswarm.tiny import make_base, make_tokenizer, write_jsonl
from modelswarm.objectives.llm_judge import OFFICIAL_TEMPLATE, fill, parse_rating
from modelswarm.objectives.reward_model import length_score, normalise_reward

from conftest import utility_of

CHAT = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
PROMPTS = ["3+4?", "Name a colour.", "Say hi", "12", "What is 2 times 9?", "ok"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Paths of a tiny chat Llama (the particle), a reward model and a judge, and the data."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForSequenceClassification

    root = tmp_path_factory.mktemp("side")
    gen = make_base(root / "gen", seed=1, chat_template=CHAT)
    judge = make_base(root / "judge", seed=2, chat_template=CHAT)
    rm_dir = root / "rm"
    tok = make_tokenizer(rm_dir, chat_template=CHAT)
    torch.manual_seed(3)
    LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, num_labels=1)).save_pretrained(rm_dir)
    data = write_jsonl(root / "prompts.jsonl", [{"prompt": p} for p in PROMPTS])
    model = AutoModelForCausalLM.from_pretrained(gen).eval()
    from transformers import AutoTokenizer
    return {"gen": gen, "rm": rm_dir, "judge": judge, "data": data, "model": model,
            "tok": AutoTokenizer.from_pretrained(gen)}


def hf_reply(model, tok, text: str, max_new_tokens: int, chat: bool = True, prefix: str = "") -> str:
    """transformers' greedy generate on one prompt (through the chat template), decoded and stripped."""
    if chat:
        text = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        ids = tok(text + prefix, add_special_tokens=False, return_tensors="pt").input_ids
    else:
        ids = tok(text + prefix, return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def hand_reward(rm_dir, prompt: str, response: str) -> tuple[float, int]:
    """The reward model's logit on one (prompt, response) through its chat template, and the response's length."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rm_dir)
    rm = AutoModelForSequenceClassification.from_pretrained(rm_dir).eval()
    text = tok.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                                   tokenize=False)
    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        return float(rm(input_ids=ids).logits[0, 0]), len(tok(response)["input_ids"])


@pytest.mark.parametrize("mode", ["default", "concise", "verbose", "reverse"])
def test_reward_utility_is_the_reward_model_on_generates_outputs(models, mode):
    util = utility_of("reward_model", data=str(models["data"]), max_new_tokens=12, reward_model=str(models["rm"]),
                      mode=mode, reward_low=-0.5, reward_high=0.5, length_low=2, length_high=14, batch_sequences=4, decode_rows=3)
    util.check()
    examples = util.load(models["data"])
    score = util.score(models["model"], models["tok"], examples)
    want = []
    for p in PROMPTS:
        r, n = hand_reward(models["rm"], p, hf_reply(models["model"], models["tok"], p, 12).strip())
        r = min(1.0, max(0.0, (r + 0.5) / 1.0))
        ln = min(1.0, max(0.0, (n - 2) / 12))
        want.append({"default": r, "concise": (r + 1 - ln) / 2, "verbose": (r + ln) / 2,
                     "reverse": -(r + min(1, n)) / 2}[mode])
    assert score.value == pytest.approx(sum(want) / len(want), abs=1e-5)
    assert score.per_example == pytest.approx(want, abs=1e-5)
    engine = util.engine(models["model"], models["tok"])
    assert util.reward_engine(engine).model is util.reward_engine(engine).model  # loaded once per engine, kept


def official_reward_scores(raw, lengths, mode):
    """reward_modeling.get_reward_scores from the raw rewards and token counts on, as written there."""
    RM_HIGH, RM_LOW, LEN_HIGH, LEN_LOW = 2.65625, -3.060546875, 201, 10
    scores = [(x - RM_LOW) / (RM_HIGH - RM_LOW) for x in raw]
    scores = [max(0, min(1, x)) for x in scores]
    if not mode == "default":
        if mode == "verbose":
            lengths = [(x - LEN_LOW) / (LEN_HIGH - LEN_LOW) for x in lengths]
        elif mode == "concise":
            lengths = [1 - ((x - LEN_LOW) / (LEN_HIGH - LEN_LOW)) for x in lengths]
        lengths = [max(0, min(1, x)) for x in lengths]
        scores = [(scores[i] + lengths[i]) / 2 for i in range(len(scores))]
    if mode == "reverse":
        scores = [-x for x in scores]
    return scores


@pytest.mark.parametrize("mode", ["default", "concise", "verbose", "reverse"])
def test_each_mode_gives_the_official_reward_score(mode):
    from types import SimpleNamespace

    from modelswarm.objectives.reward_model import combine

    p = SimpleNamespace(mode=mode, reward_low=-3.060546875, reward_high=2.65625, length_low=10, length_high=201)
    raw = [-4.0, -3.0, -1.0, 0.0, 0.5, 2.0, 3.0, 1.0]
    lengths = [0, 1, 5, 10, 50, 150, 201, 300]
    want = official_reward_scores(raw, lengths, mode)
    assert [combine(r, n, p) for r, n in zip(raw, lengths)] == pytest.approx(want, abs=1e-12)
    if mode == "reverse":  # a better reward is a worse utility
        assert combine(2.0, 20, p) < combine(0.0, 20, p) < 0


def test_the_official_reward_normalisation():
    low, high = -3.060546875, 2.65625  # official RM_LOW, RM_HIGH
    assert normalise_reward(high, low, high) == 1.0 and normalise_reward(low, low, high) == 0.0
    assert normalise_reward(10.0, low, high) == 1.0 and normalise_reward(-10.0, low, high) == 0.0
    assert normalise_reward(0.0, low, high) == pytest.approx(3.060546875 / (2.65625 + 3.060546875))
    assert length_score(10, 10, 201) == 0.0 and length_score(201, 10, 201) == 1.0 and length_score(300, 10, 201) == 1.0


def official_parse_gemini_score(response):
    """evaluate.py parse_gemini_score, as written there (less its warning)."""
    if "Rating: " not in response:
        return 1  # output format invalid
    score = response.split("Rating: ")[1].split("/10")[0]
    return int(score)


# official: the number it returns, or "raises" where int() fails (the search crashes there)
@pytest.mark.parametrize("reply, official", [
    ("Rating: 7", 7), ("Rating: 0/10", 0), ("Rating: 11/10", 11), ("Rating: +7/10", 7),  # no clamping
    ("Rating: 7/10 because", 7), ("Rating: 10/10", 10), ("Sure. Rating: 3 /10", 3), ("Rating:  8 /10", 8),
    ("Rating: 1/10 Rating: 9/10", 1), ("Rating: 4 Rating: 9/10", 4), ("Rating: -2/10", -2), ("Rating: 6\n", 6),
    ("rating: 7/10", 1), ("7/10", 1), ("", 1),  # no "Rating: ": the official 1
    ("Rating: seven/10", "raises"), ("Rating: 7.5/10", "raises"), ("Rating: 7 out of 10", "raises"),
    ("Rating: 7\n\nClear and short.", "raises"), ("Rating: ", "raises"),
])
def test_the_rating_parse_is_the_officials(reply, official):
    try:
        got = official_parse_gemini_score(reply)
    except ValueError:
        got = "raises"
    assert got == official  # the table is what the official function does
    ours = parse_rating(reply)
    if official == "raises":
        assert ours is None  # counted as unparsable, given default_rating
    elif "Rating: " not in reply:
        assert ours is None  # default_rating, the official 1 by default
    else:
        assert ours == official


@pytest.mark.parametrize("reply", ["Rating: 7/10 and", "Rating: 7 Rating: ", "x Rating: 10/10"])
def test_a_reply_is_settled_once_more_text_cannot_change_its_rating(reply):
    from modelswarm.objectives.llm_judge import settled

    assert settled(reply) and all(parse_rating(reply + more) == parse_rating(reply) for more in ("0", " 5/10", "\n"))
    assert not settled("Rating: 7") and not settled("Rating: 1") and not settled("no rating yet")


def test_judge_utility_is_the_mean_parsed_rating_over_ten_and_counts_unparsable(models):
    common = dict(data=str(models["data"]), max_new_tokens=6, judge_model=str(models["judge"]), batch_sequences=4, decode_rows=3)
    util = utility_of("llm_judge", **common, judge_max_new_tokens=5)
    util.check()
    examples = util.load(models["data"])
    score = util.score(models["model"], models["tok"], examples)
    # by hand: the particle's replies, the judge's replies to the filled template, parsed
    from transformers import AutoModelForCausalLM, AutoTokenizer
    judge, jtok = AutoModelForCausalLM.from_pretrained(models["judge"]).eval(), AutoTokenizer.from_pretrained(models["judge"])
    resps = [hf_reply(models["model"], models["tok"], p, 6).strip() for p in PROMPTS]
    verdicts = ["Rating: " + hf_reply(judge, jtok, fill(OFFICIAL_TEMPLATE, p, r), 5, prefix="Rating: ")
                for p, r in zip(PROMPTS, resps)]
    assert util.replies(util.engine(models["model"], models["tok"]), PROMPTS, resps) == verdicts  # the judge saw what generate gives
    ratings = [parse_rating(v) for v in verdicts]
    assert score.counts == {"unparsable_ratings": sum(r is None for r in ratings)}
    assert score.value == pytest.approx(sum(1 if r is None else r for r in ratings) / len(ratings) / 10)
    # a reply that gives the rating is parsed: a prefix that already holds one settles it for every prompt
    sure = utility_of("llm_judge", **common, judge_prefix="Rating: 7/10", template="Rate: {response}")
    s = sure.score(models["model"], models["tok"], examples)
    assert s.value == pytest.approx(0.7) and s.counts == {"unparsable_ratings": 0}
    dflt = utility_of("llm_judge", **common, judge_prefix="Rating: none", default_rating=4, judge_max_new_tokens=1)
    s = dflt.score(models["model"], models["tok"], examples)
    assert s.value == pytest.approx(0.4) and s.counts == {"unparsable_ratings": len(PROMPTS)}


def test_bad_side_models_and_templates_are_refused_naming_the_key(models, tmp_path):
    d = str(models["data"])
    cases = [
        (utility_of("reward_model", data=d, reward_model=str(tmp_path / "nope")), "utility.reward_model",
         "not a local model directory"),
        (utility_of("reward_model", data=d, reward_model=str(models["judge"])), "utility.reward_model",
         "LlamaForCausalLM, not a \\*ForSequenceClassification"),
        (utility_of("llm_judge", data=d, judge_model=str(models["judge"]), template="Rate {prompt}"),
         "utility.template", "no {response} placeholder"),
        (utility_of("llm_judge", data=d, judge_model=str(tmp_path)), "utility.judge_model", "no config.json"),
        (utility_of("reward_model", data=d, reward_model=str(models["rm"]), reward_low=1.0, reward_high=0.0),
         "utility.reward_high", "must be greater"),
    ]
    from transformers import LlamaConfig, LlamaForSequenceClassification
    two = tmp_path / "two"
    make_tokenizer(two)
    LlamaForSequenceClassification(LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, num_labels=2)).save_pretrained(two)
    cases.append((utility_of("reward_model", data=d, reward_model=str(two)), "utility.reward_model", "has 2 labels"))
    for util, key, problem in cases:
        with pytest.raises(UserError, match=problem) as err:
            util.check()
        assert err.value.where == key and "\n" not in str(err.value)


def test_prompt_data_must_have_prompts(tmp_path, models):
    bad = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"question": "b"}])
    with pytest.raises(UserError, match="missing field 'prompt'") as err:
        utility_of("llm_judge", data=str(bad), judge_model=str(models["judge"])).load(bad)
    assert err.value.where == f"{bad}:2"


@pytest.mark.parametrize("utility, problem", [
    ({"kind": "reward_model", "reward_model": "missing-dir"}, "utility.reward_model: '"),
    ({"kind": "llm_judge", "judge_model": "JUDGE", "template": "Rate: {prompt}"}, "utility.template: has no {response}"),
    ({"kind": "reward_model", "reward_model": "JUDGE"}, "not a *ForSequenceClassification"),
])
def test_cli_refuses_a_bad_side_model_or_template_before_any_worker_starts(models, tmp_path, utility, problem):
    import subprocess
    import sys

    import yaml

    utility = {k: (str(models["judge"]) if v == "JUDGE" else v) for k, v in utility.items()}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"base_model": str(models["gen"]), "experts": str(tmp_path / "none"),
                                   "runs_dir": str(tmp_path / "runs"), "utility": {**utility, "data": str(models["data"])}}))
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "run", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and problem.replace(": ", "': ", 1) in r.stderr, r.stderr
    assert f"{cfg}: key 'utility." in r.stderr
    assert not (tmp_path / "runs").exists()
