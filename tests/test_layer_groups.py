"""Per-layer-group coefficients (`swarm.granularity: layers`): each contiguous group of decoder
layers gets its own n coefficients, exactly as a direct per-tensor computation gives them;
the swarm's particles have n * K coordinates and start as the global ones in every group;
the best exports as a PEFT adapter that scores the same; a stopped run resumes to the same
result; too many groups is a one-line error."""

import json

import numpy as np
import pytest
import torch

from modelswarm.weights.compose import compose_into, compose_numpy
from modelswarm.config import SwarmParams, load_config
from modelswarm.run.prepare import prepare
from modelswarm.run.coordinator import run_swarm
from modelswarm.errors import UserError
from modelswarm.weights.experts import load_bank
from modelswarm.export.particle import export_particle
from modelswarm.weights.layer_groups import layer_of, n_layers
from modelswarm.search.state import RunDir
from modelswarm.search.swarm import Swarm
from modelswarm.export.verify import score_checkpoint

from conftest import write_config

LAYER_ROW = [0.9, 0.1, 0.0, -0.2, 0.5, 0.7]  # group 0: (0.9, 0.1, 0.0), group 1: (-0.2, 0.5, 0.7)
SMALL_SWARM = {"size": 4, "max_iterations": 3, "patience": 3, "restart_patience": 2,
               "granularity": "layers", "layer_groups": 2}



def direct(bank, coeffs, groups) -> dict[str, torch.Tensor]:
    """Tensor by tensor: layer l of L takes group l * K // L's coefficients, a tensor outside
    the layers their mean; the sum in expert order, as compose_into adds it."""
    n, total = len(bank.names), n_layers(bank.layout.keys)
    rows = np.asarray(coeffs, dtype=np.float64).reshape(groups, n)
    per_expert = [bank.layout.split(bank.matrix[j]) for j in range(n)]
    out = {}
    for key in bank.layout.keys:
        layer = layer_of(key)
        c = (rows[0] if (rows == rows[0]).all() else rows.mean(axis=0)) if layer is None else rows[layer * groups // total]
        t = torch.empty(per_expert[0][key].shape, dtype=torch.float32)
        out[key] = compose_into(t, torch.stack([torch.from_numpy(np.array(e[key])) for e in per_expert]), c)
    return out


def test_each_layer_group_is_composed_exactly_with_its_own_coefficients(setup):
    bank, ev = setup
    assert n_layers(bank.layout.keys) == 2  # the tiny world: one layer per group
    got = bank.layout.split(compose_numpy(bank.matrix, LAYER_ROW, bank.layout))
    want = direct(bank, LAYER_ROW, 2)
    for key in bank.layout.keys:
        assert torch.equal(torch.from_numpy(np.array(got[key])), want[key]), key
    ev.composer.apply(LAYER_ROW)  # the worker writes the same bits into the live model
    assert torch.equal(ev.composer.flat, torch.from_numpy(compose_numpy(bank.matrix, LAYER_ROW, bank.layout)))


def test_tensors_outside_the_layers_take_the_mean_of_the_groups(world, tmp_path):
    """Full fine-tunes hold the embeddings and the final norm too."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    lora = load_bank(str(world["experts"]))
    for name in lora.names:
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(world["base"]),
                                  str(world["experts"] / name)).merge_and_unload().save_pretrained(tmp_path / name)
    bank = load_bank(str(tmp_path))
    outside = [k for k in bank.layout.keys if layer_of(k) is None]
    assert any("embed_tokens" in k for k in outside) and any(k.endswith("norm.weight") for k in outside)
    got = bank.layout.split(compose_numpy(bank.matrix, LAYER_ROW, bank.layout))
    want = direct(bank, LAYER_ROW, 2)
    for key in bank.layout.keys:
        assert torch.equal(torch.from_numpy(np.array(got[key])), want[key]), key


def test_a_layer_row_whose_groups_agree_is_the_global_row(setup):
    bank, ev = setup
    row = [0.2, 0.3, 0.5]
    ev.composer.apply(row)
    flat = ev.composer.flat.clone()
    ev.composer.apply(row * 2)
    assert torch.equal(ev.composer.flat, flat)


def test_the_best_layer_row_exports_as_an_adapter_that_scores_the_same(world, setup, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    bank, ev = setup
    export_particle(tmp_path / "x", bank, LAYER_ROW, str(world["base"]))
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(world["base"]), str(tmp_path / "x")).eval()
    ev.composer.apply(LAYER_ROW)
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.inference_mode():
        assert torch.equal(ev.model(input_ids=ids).logits, ref(input_ids=ids).logits)


def test_particles_have_a_coordinate_per_expert_per_group_and_start_global():
    flat = Swarm.create(3, SwarmParams(size=6), seed=0)
    layered = Swarm.create(3, SwarmParams(size=6, granularity="layers", layer_groups=4), seed=0)
    assert layered.x.shape == (6, 12)
    np.testing.assert_array_equal(layered.x, np.tile(flat.x, (1, 4)))


@pytest.mark.parametrize("velocity_init", ["random", "zero", "best"])
def test_layer_groups_that_start_equal_move_apart(velocity_init):
    """Equal starts in every group and one draw per particle would keep every group equal
    through the whole search: the layer search would be the global one, repeated."""
    params = SwarmParams(size=6, granularity="layers", layer_groups=4, velocity_init=velocity_init)
    s = Swarm.create(3, params, seed=0)
    s.start(np.array([.3, .5, .1, .7, .2, .4]))
    x = s.propose()
    groups = x.reshape(6, 4, 3)
    assert not np.allclose(groups, groups[:, :1, :])


def test_one_group_draws_what_the_global_search_draws():
    flat = Swarm.create(3, SwarmParams(size=6), seed=0)
    one = Swarm.create(3, SwarmParams(size=6, granularity="layers", layer_groups=1), seed=0)
    for s in (flat, one):
        s.start(np.linspace(0.1, 0.6, 6))
        s.propose()
    np.testing.assert_array_equal(one.x, flat.x)
    np.testing.assert_array_equal(one.v, flat.v)


def test_more_groups_than_layers_is_a_one_line_error(world, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", swarm={"granularity": "layers",
                                                                             "layer_groups": 3})
    with pytest.raises(UserError, match="key 'swarm.layer_groups' is 3, more than the 2 decoder layers") as err:
        prepare(load_config(path), path)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_a_layer_search_exports_its_score_and_resumes_to_the_same_result(world, ray_session, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="layers", swarm=SMALL_SWARM)
    cfg = load_config(path)
    summary = run_swarm(prepare(cfg, path), live=False)
    assert len(summary["best"]["coefficients"]) == 2 * 3
    assert score_checkpoint(cfg, RunDir(cfg.run_dir).best_dir) == summary["best"]["score"]

    again = write_config(tmp_path / "a.yaml", world, tmp_path / "runs", name="again", swarm=SMALL_SWARM)
    prep = prepare(load_config(again), again)
    assert run_swarm(prep, live=False, stop_after=1)["status"] == "stopped"
    resumed = run_swarm(prep, live=False, resume=True)
    assert resumed["best"] == summary["best"] and resumed["history"] == summary["history"]
    assert resumed["evaluations"]["replayed_from_journal"] > 0

    state = RunDir(prep.config.run_dir).state_file  # a snapshot whose groups shared their draws
    saved = json.loads(state.read_text())
    del saved["swarm"]["group_draws"]
    state.write_text(json.dumps(saved))
    with pytest.raises(UserError, match="groups shared their random draws") as err:
        run_swarm(prep, live=False, resume=True)
    assert str(state) in str(err.value) and "\n" not in str(err.value)


def test_only_a_layer_swarm_marks_its_snapshot_as_drawing_per_group():
    assert Swarm.create(3, SwarmParams(size=4, granularity="layers", layer_groups=2), seed=0).to_json()["group_draws"]
    assert "group_draws" not in Swarm.create(3, SwarmParams(size=4), seed=0).to_json()
