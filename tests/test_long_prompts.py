"""Prompts of very different lengths: prefill batches bounded in padding, decoding pooled and exact."""

import torch

from modelswarm.engine.batching import length_batches
from modelswarm.engine.greedy import tree_greedy_decode
from modelswarm.sections import EngineConfig


def test_a_long_prompt_is_not_padded_to_a_much_longer_one():
    lengths = [740, 1421, 805, 10, 746, 631, 9]
    batches = length_batches(lengths, EngineConfig())
    assert [[lengths[k] for k in b] for b in batches] == [[1421], [805, 746, 740, 631], [10, 9]]


def test_short_prompts_batch_up_to_batch_sequences_whatever_their_padding():
    lengths = [14, 3, 9, 5, 12, 4, 8, 13, 6, 7, 11, 10]  # 12 x 14 padded tokens: padding is nearly free
    assert length_batches(lengths, EngineConfig()) == [sorted(range(12), key=lambda k: -lengths[k])]
    assert [len(b) for b in length_batches(lengths, EngineConfig(batch_sequences=5))] == [5, 5, 2]


def test_rows_joining_and_leaving_the_decode_pool_produce_the_tokens_of_generate(evaluator):
    """One prompt per prefill batch, so rows join a group already decoding; the longest
    prompt stops after two tokens, so the group's cache loses its widest columns."""
    from transformers import GenerationConfig

    evaluator.composer.apply([0.3, 0.3, 0.4])
    tok = evaluator.tokenizer
    texts = [f"{d}" * n + "^" for d, n in zip(range(7), (30, 2, 9, 1, 17, 4, 12))]
    prompts = [tok(t)["input_ids"] for t in texts]
    longest = max(range(len(prompts)), key=lambda k: len(prompts[k]))
    finished = tree_greedy_decode(evaluator.model, prompts, lambda n: [[i] for i in range(len(n))], cap=64,
                                  decode_rows=3, pad_id=tok.pad_token_id, stops={tok.eos_token_id}, max_new_tokens=6,
                                  needs_more=lambda k, ids: k != longest or len(ids) < 2)
    ours = dict(finished)
    assert sorted(ours) == list(range(len(prompts))) and len(ours[longest]) <= 2
    gen = GenerationConfig(max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)
    for k, p in enumerate(prompts):
        with torch.inference_mode():
            ref = evaluator.model.generate(input_ids=torch.tensor([p]), generation_config=gen)[0, len(p):]
        mine, full = ours[k], (2 if k == longest else 6)
        assert mine == ref.tolist()[:len(mine)] and (len(mine) == full or mine[-1] == tok.eos_token_id)
