"""The GPU path: on cuda, in float32 and bfloat16, composition, trie scoring and greedy
decoding give what the plain paths give. Marked `cuda`; without a CUDA device they skip.

bench/gpu.sh runs them. MODELSWARM_TEST_DEVICE=cpu runs the same checks on the CPU (a
check of the tests themselves where no GPU is at hand).

bfloat16 keeps about 3 significant digits, and a batched or tree-shaped pass adds in
another order than a lone sequence: scores then agree to a tolerance, and greedy tokens
agree until the reference's own top two logits are closer than that tolerance (a near
tie, where either token is a faithful greedy choice; the rows part ways from there).
"""

import os

import numpy as np
import pytest
import torch

from modelswarm.weights.compose import compose_numpy
from modelswarm.objectives import utility_config as UtilityConfig
from modelswarm.weights.experts import load_bank
from modelswarm.objectives import make_utility
from modelswarm.engine.model_parts import backbone_and_head
from modelswarm.engine.greedy import greedy_decode, tree_greedy_decode
from modelswarm.engine.prefix_tree import PrefixForest, tree_inputs
from modelswarm.cluster.worker import Evaluator

DEVICE = os.environ.get("MODELSWARM_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")]
# scores: absolute tolerance on a mean log-probability; logits: what counts as a near tie
TOL = {"float32": dict(compose=1e-5, score=1e-4, hidden=(1e-4, 1e-5), tie=1e-3),
       "bfloat16": dict(compose=8e-3, score=5e-2, hidden=(3e-2, 3e-2), tie=6e-2)}


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def evaluator(world, request):
    bank = load_bank(str(world["experts"]))
    cfg = UtilityConfig(kind="multiple_choice", data=str(world["val"]))
    val = make_utility(cfg).load(world["val"])
    ev = Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": val}, device=DEVICE,
                   dtype=request.param, num_threads=1)
    ev.dtype_name = request.param
    ev.bank = bank
    return ev


def test_the_model_lives_on_the_device_in_its_dtype_and_composes_as_the_export_does(evaluator):
    params = list(evaluator.model.parameters())
    assert {p.device.type for p in params} == {torch.device(DEVICE).type}
    assert params[0].dtype == getattr(torch, evaluator.dtype_name)
    coeffs = [0.7, -0.2, 0.5]
    evaluator.composer.apply(coeffs)
    want = torch.from_numpy(np.ascontiguousarray(compose_numpy(evaluator.bank.matrix, coeffs)))
    got = evaluator.composer.flat.float().cpu()
    # composed in float32 on the device, cast once: the CPU export's weights, to a rounding step
    rtol = TOL[evaluator.dtype_name]["compose"]
    torch.testing.assert_close(got, want.to(evaluator.composer.flat.dtype).float(), rtol=rtol, atol=1e-6)


def test_trie_hidden_states_equal_each_prompt_alone(evaluator):
    evaluator.composer.apply([0.5, 0.2, 0.3])
    backbone, _ = backbone_and_head(evaluator.model)
    param = next(evaluator.model.parameters())
    rng = np.random.default_rng(7)
    stems = [list(rng.integers(4, 60, size=rng.integers(1, 6))) for _ in range(6)]
    prompts = [[int(t) for t in stems[rng.integers(6)]] + [int(t) for t in rng.integers(4, 60, size=rng.integers(0, 5))]
               for _ in range(30)]
    forest = PrefixForest()
    nodes = [forest.insert(p) for p in prompts]
    rows = forest.rows(7)
    ids, positions, mask = tree_inputs(forest, rows, 0, param.dtype, param.device)
    rtol, atol = TOL[evaluator.dtype_name]["hidden"]
    with torch.inference_mode():
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        where = {n: (b, i) for b, row in enumerate(rows) for i, n in enumerate(row)}
        for p, ns in zip(prompts, nodes):
            alone = backbone(input_ids=torch.tensor([p], device=param.device)).last_hidden_state[0]
            got = torch.stack([hidden[where[n]] for n in ns])
            torch.testing.assert_close(got.float(), alone.float(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("sharing", [True, False])
def test_multiple_choice_scores_equal_the_full_forward_pass(world, evaluator, sharing):
    evaluator.composer.apply([0.0, 0.0, 1.0])
    util = make_utility(UtilityConfig(kind="multiple_choice", data=str(world["val"]), prefix_sharing=sharing,
                                      batch_tokens=16))
    examples = util.load(world["val"])[:12]
    got = util.choice_scores(evaluator.model, evaluator.tokenizer, examples)
    tok, device = evaluator.tokenizer, next(evaluator.model.parameters()).device
    for ex, row in zip(examples, got):
        for choice, score in zip(ex["choices"], row):
            p = tok(ex["question"])["input_ids"]
            c = tok(" " + choice, add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = evaluator.model(input_ids=torch.tensor([p + c], device=device)).logits[0]
            lp = torch.log_softmax(logits.float(), -1)
            want = sum(lp[len(p) - 1 + t, c[t]].item() for t in range(len(c))) / len(c)
            assert score == pytest.approx(want, abs=TOL[evaluator.dtype_name]["score"])


def prompts_of(tok) -> list[list[int]]:
    rows = [f"{d}^" for d in range(10)] + [f"{d}{d}v" for d in range(5)] + [f"{d}{d}=" for d in range(5)]
    return [tok(r)["input_ids"] for r in rows]


@pytest.mark.parametrize("sharing", [True, False])
def test_greedy_decoding_produces_the_tokens_of_generate(evaluator, sharing):
    from transformers import GenerationConfig

    evaluator.composer.apply([0.3, 0.3, 0.4])
    tok, device = evaluator.tokenizer, next(evaluator.model.parameters()).device
    prompts = prompts_of(tok)
    common = dict(pad_id=tok.pad_token_id, stops={tok.eos_token_id}, max_new_tokens=4)
    if sharing:
        finished = tree_greedy_decode(evaluator.model, prompts, lambda n: [[0, 1, 2], list(range(3, len(n)))],
                                      cap=5, decode_rows=3, **common)
    else:
        batches = [[0, 3, 5, 19, 11], [1, 2, 4], [6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18]]
        finished = greedy_decode(evaluator.model, prompts, batches, **common)
    ours: list = [None] * len(prompts)
    for k, ids in finished:
        assert ours[k] is None
        ours[k] = ids
    gen = GenerationConfig(max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)
    tie = TOL[evaluator.dtype_name]["tie"]
    parted = 0
    for p, mine in zip(prompts, ours):  # one at a time: no padding on the reference side
        with torch.inference_mode():
            ref = evaluator.model.generate(input_ids=torch.tensor([p], device=device), generation_config=gen,
                                           output_logits=True, return_dict_in_generate=True)
        tokens = ref.sequences[0, len(p):].tolist()
        for t, (a, b) in enumerate(zip(mine, tokens)):
            if a != b:
                logits = ref.logits[t][0].float()
                assert logits[b] - logits[a] <= tie * max(1.0, logits[b].abs().item()), (p, mine, tokens)
                parted += 1
                break
        else:
            assert mine == tokens[:len(mine)] and (len(mine) == 4 or mine[-1] == tok.eos_token_id)
    assert parted <= (0 if evaluator.dtype_name == "float32" else 2), "near ties are rare"
