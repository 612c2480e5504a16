"""Delta-space merges (modelswarm compare's task arithmetic, TIES, DARE-TIES) write exactly
W0 + merge(B_j A_j * scaling) into the live model, as a direct computation of the
documented formulas gives it, and go back to W0 for the next coefficient evaluation."""

import json

import pytest
import torch

from modelswarm.objectives import utility_config as UtilityConfig
from modelswarm.weights.candidates import DeltaMerge as MergeSpec
from modelswarm.weights.delta import lora_modules
from modelswarm.merges.ties import trim
from modelswarm.weights.experts import load_bank
from modelswarm.cluster.worker import Evaluator


@pytest.fixture(scope="module")
def setup(world):
    bank = load_bank(str(world["experts"]))
    from modelswarm.objectives import make_utility

    cfg = UtilityConfig(kind="multiple_choice", data=str(world["val"]))
    val = make_utility(cfg).load(str(world["val"]))[:4]
    ev = Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": val}, num_threads=1)
    return bank, ev


def direct_deltas(bank, world) -> dict[str, torch.Tensor]:
    """{module: (n, out, in)} from the adapter files' own A and B, scaled by alpha / r."""
    from safetensors.torch import load_file

    cfg = json.loads((world["experts"] / bank.names[0] / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    per = [load_file(str(world["experts"] / n / "adapter_model.safetensors")) for n in bank.names]
    mods = sorted({k.split(".lora_")[0] for k in per[0]})
    return {m: torch.stack([p[f"{m}.lora_B.weight"] @ p[f"{m}.lora_A.weight"] * scale for p in per]) for m in mods}


def direct_ties(d: torch.Tensor, density: float, scale: float, masks=None) -> torch.Tensor:
    """TIES-Merging as the paper writes it: trim to the top density of |delta| per expert (or
    DARE: keep the given random masks, rescaled by 1/density), elect the sign of the sum,
    average the entries that agree with it, times lambda."""
    kept = []
    for j, x in enumerate(d):
        if masks is None:
            k = int(density * x.numel())
            thresh = x.abs().flatten().topk(k).values.min()
            kept.append(torch.where(x.abs() >= thresh, x, torch.zeros_like(x)))
        else:
            kept.append(x * masks[j] / density)
    t = torch.stack(kept)
    sign = torch.where(t.sum(0) >= 0, 1.0, -1.0)
    agree = (torch.sign(t) == sign) & (t != 0)
    return scale * (t * agree).sum(0) / agree.sum(0).clamp(min=1)


def weights_after(ev, bank, spec) -> dict[str, torch.Tensor]:
    """The base weights of every LoRA target after the worker's DeltaComposer applied spec."""
    ev.composer_for(spec).apply(spec)
    return {name.removeprefix("base_model.model."): m.base_layer.weight.detach().clone()
            for name, m, _, _ in lora_modules(ev.model, bank.layout)}


def base_weights(world) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(world["base"] / "model.safetensors"))


def test_task_arithmetic_is_w0_plus_lambda_sum_of_ba(world, setup):
    bank, ev = setup
    d, w0 = direct_deltas(bank, world), base_weights(world)
    got = weights_after(ev, bank, MergeSpec("task_arithmetic", scale=0.4))
    assert len(got) == len(d) == 14  # 7 targets x 2 layers
    for m, delta in d.items():
        name = m.removeprefix("base_model.model.")
        torch.testing.assert_close(got[name], w0[name + ".weight"] + 0.4 * delta.sum(0), rtol=1e-5, atol=1e-6)


def test_ties_is_trim_elect_sign_disjoint_mean(world, setup):
    bank, ev = setup
    d, w0 = direct_deltas(bank, world), base_weights(world)
    got = weights_after(ev, bank, MergeSpec("ties", scale=1.5, density=0.2))
    for m, delta in d.items():
        name = m.removeprefix("base_model.model.")
        torch.testing.assert_close(got[name], w0[name + ".weight"] + direct_ties(delta, 0.2, 1.5),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:The density")  # PEFT on density 1: nothing to prune
@pytest.mark.parametrize("density", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_the_trim_keeps_what_pefts_magnitude_pruning_keeps(density):
    from peft.utils import merge_utils

    x = torch.randn(48, 40, generator=torch.Generator().manual_seed(3))
    assert torch.equal(trim(x, density), merge_utils.prune(x, density, method="magnitude"))


def test_dare_ties_masks_come_from_the_seed(world, setup):
    bank, ev = setup
    d, w0 = direct_deltas(bank, world), base_weights(world)
    spec = MergeSpec("dare_ties", scale=1.0, density=0.5, seed=7)
    got = weights_after(ev, bank, spec)
    again = weights_after(ev, bank, spec)
    other = weights_after(ev, bank, MergeSpec("dare_ties", scale=1.0, density=0.5, seed=8))
    # the masks are drawn module by module in the model's order, expert by expert
    torch.manual_seed(7)
    order = [name for name, _, _, _ in lora_modules(ev.model, bank.layout)]
    for m in order:
        name = m.removeprefix("base_model.model.")
        masks = [torch.bernoulli(torch.full_like(x, 0.5)) for x in d[m]]
        torch.testing.assert_close(got[name], w0[name + ".weight"] + direct_ties(d[m], 0.5, 1.0, masks),
                                   rtol=1e-5, atol=1e-6)
        assert torch.equal(got[name], again[name])
    assert any(not torch.equal(got[k], other[k]) for k in got)


def test_a_merge_turns_the_lora_branch_off_and_a_row_brings_w0_back(world, setup):
    bank, ev = setup
    w0 = base_weights(world)
    ev.evaluate(MergeSpec("task_arithmetic", scale=1.0), "val")
    assert all(float(p.abs().max()) == 0 for n, p in ev.model.named_parameters() if ".lora_" in n)
    ev.evaluate([0.2, 0.3, 0.5], "val")
    for name, m, _, _ in lora_modules(ev.model, bank.layout):
        assert torch.equal(m.base_layer.weight, w0[name.removeprefix("base_model.model.") + ".weight"])
    assert any(float(p.abs().max()) > 0 for n, p in ev.model.named_parameters() if ".lora_" in n)


def test_merge_spec_round_trips_and_refuses_nonsense():
    spec = MergeSpec("dare_ties", scale=0.5, density=0.2, seed=3)
    assert MergeSpec.from_dict(json.loads(spec.canonical())) == spec
    assert MergeSpec.from_dict(MergeSpec("task_arithmetic", 0.4).to_dict()) == MergeSpec("task_arithmetic", 0.4)
    with pytest.raises(ValueError):
        MergeSpec("average")
    with pytest.raises(ValueError):
        MergeSpec("ties", density=0.0)


def test_a_one_hot_linear_merge_is_that_expert(world, setup):
    """Independent of the formula: W0 + B_j A_j scaling is what PEFT computes for expert j."""
    bank, ev = setup
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    for j in range(len(bank.names)):
        onehot = tuple(float(i == j) for i in range(len(bank.names)))
        ev.evaluate(list(onehot), "val")
        with torch.inference_mode():
            want = ev.model(input_ids=ids).logits
        ev.evaluate(MergeSpec("linear", weights=onehot), "val")
        with torch.inference_mode():
            got = ev.model(input_ids=ids).logits
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
