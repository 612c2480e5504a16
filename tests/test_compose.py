"""Composition writes sum_j c_j E_j into the live model: for a one-hot row the model is
exactly the expert as PEFT loads it, and an export holds exactly the scored weights."""

import numpy as np
import pytest
import torch

from modelswarm.weights.compose import compose_numpy
from modelswarm.objectives import utility_config as UtilityConfig
from modelswarm.weights.experts import load_bank
from modelswarm.export.particle import export_particle, read_provenance
from modelswarm.cluster.worker import Evaluator



def logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_one_hot_row_is_the_expert_as_peft_loads_it(world, setup):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    bank, ev = setup
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    for j, name in enumerate(bank.names):
        row = np.eye(len(bank.names))[j]
        ev.composer.apply(row)
        ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(world["base"]),
                                        str(world["experts"] / name)).eval()
        assert torch.equal(logits(ev.model, ids), logits(ref, ids)), name


def test_zero_row_is_the_base_model(world, setup):
    from transformers import AutoModelForCausalLM

    bank, ev = setup
    ev.composer.apply(np.zeros(len(bank.names)))
    base = AutoModelForCausalLM.from_pretrained(world["base"]).eval()
    ids = torch.tensor([[1, 5, 6, 7]])
    torch.testing.assert_close(logits(ev.model, ids), logits(base, ids))


def test_composition_reuses_one_buffer(setup):
    bank, ev = setup
    ptr = ev.composer.flat.data_ptr()
    lora_a = next(p for n, p in ev.model.named_parameters() if "lora_A" in n)
    ev.composer.apply([0.2, 0.3, 0.5])
    ev.composer.apply([1.5, -0.7, 0.2])
    assert ev.composer.flat.data_ptr() == ptr
    assert lora_a.data_ptr() >= ptr  # parameters are views into the buffer


def test_export_holds_the_scored_weights_and_its_provenance(world, setup, tmp_path):
    from safetensors.torch import load_file

    bank, ev = setup
    coeffs = [0.7, -0.2, 0.5]
    ev.composer.apply(coeffs)
    export_particle(tmp_path / "best", bank, coeffs, str(world["base"]), score=0.5)
    saved = load_file(str(tmp_path / "best" / "adapter_model.safetensors"))
    live = dict(ev.model.named_parameters())
    for key, tensor in saved.items():
        assert torch.equal(tensor, live[key.replace(".weight", ".default.weight")]), key
    info = read_provenance(tmp_path / "best")
    assert info["experts"] == list(bank.names) and info["coefficients"] == coeffs and info["score"] == 0.5
    assert np.array_equal(compose_numpy(bank.matrix, coeffs), ev.composer.flat.numpy())


def test_bfloat16_workers_compose_and_score(world, setup):
    bank, _ = setup
    cfg = UtilityConfig(kind="multiple_choice", data=str(world["val"]))
    from modelswarm.objectives import make_utility

    val = make_utility(cfg).load(world["val"])
    ev = Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": val}, dtype="bfloat16", num_threads=1)
    assert next(p for n, p in ev.model.named_parameters() if "q_proj.base_layer" in n).dtype == torch.bfloat16
    result = ev.evaluate([0.2, 0.3, 0.5])
    assert 0.0 <= result.score <= 1.0 and len(result.per_example) == len(val)
    want = bank.layout.split(compose_numpy(bank.matrix, [0.2, 0.3, 0.5]))
    live = dict(ev.model.named_parameters())
    for key, tensor in want.items():
        got = live[key.replace(".weight", ".default.weight")]
        assert torch.allclose(got.float(), torch.from_numpy(tensor).to(got.dtype).float()), key


@pytest.fixture(scope="module")
def biased_world(tmp_path_factory):
    """A tiny Llama with attention biases and two adapters that also train the q/v biases
    (bias='all') and a modules_to_save copy of lm_head: the tensors besides A and B."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from modelswarm.tiny import make_tokenizer

    root = tmp_path_factory.mktemp("biased")
    tok = make_tokenizer(root / "base")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=2, attention_bias=True,
                                 tie_word_embeddings=False)).save_pretrained(root / "base")
    for k, name in enumerate(["a", "b"]):
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(root / "base"),
                               LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                          modules_to_save=["lm_head"], bias="all"))
        torch.manual_seed(k + 1)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.requires_grad:  # as if trained: every adapter tensor moves
                    p.add_(0.1 * torch.randn_like(p))
        model.save_pretrained(root / "experts" / name)
    return root


def test_adapters_with_biases_and_modules_to_save_combine_every_tensor(biased_world):
    """The official lora_merge combines every tensor of the adapter file linearly: so does
    the worker, and the result equals PEFT loading the hand-combined state dict."""
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from modelswarm.weights.experts import check_against_base

    root = biased_world
    bank = load_bank(str(root / "experts"))
    assert any("lm_head" in k for k in bank.layout.keys) and any(k.endswith(".bias") for k in bank.layout.keys)
    check_against_base(bank.layout, root / "base")
    cfg = UtilityConfig(kind="multiple_choice", data="unused.jsonl")
    ev = Evaluator(str(root / "base"), bank.layout, bank.matrix, cfg, {"val": []}, num_threads=1)
    coeffs = [0.7, 0.6]
    ev.composer.apply(coeffs)

    files = [load_file(str(root / "experts" / n / "adapter_model.safetensors")) for n in ("a", "b")]
    combined = {k: coeffs[0] * files[0][k] + coeffs[1] * files[1][k] for k in files[0]}
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(root / "base"), str(root / "experts" / "a"))
    set_peft_model_state_dict(ref, combined)
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    torch.testing.assert_close(logits(ev.model, ids), logits(ref.eval(), ids), rtol=1e-5, atol=1e-6)


def test_all_zero_coefficients_are_no_base_model_when_the_adapter_holds_more_than_a_and_b(biased_world, world):
    from modelswarm.report.baselines import reference_points

    assert "base model" not in reference_points(load_bank(str(biased_world / "experts")).layout)
    assert "base model" in reference_points(load_bank(str(world["experts"])).layout)


def test_an_adapter_tensor_the_base_lacks_is_refused_before_any_worker(biased_world, tmp_path):
    from modelswarm.errors import UserError
    from modelswarm.weights.experts import check_against_base
    from modelswarm.tiny import make_base

    bank = load_bank(str(biased_world / "experts"))
    plain = make_base(tmp_path / "plain", layers=1)  # same shapes, but no attention biases
    with pytest.raises(UserError, match=r"adapter tensor .*_proj\S*\.bias: .*_proj\.bias does not exist"):
        check_against_base(bank.layout, plain)
