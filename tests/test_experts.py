"""Experts are checked before any search: one clear error naming the file and the problem."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from modelswarm.errors import UserError
from modelswarm.weights.experts import check_against_base, load_bank
from modelswarm.tiny import make_base, train_lora


def copy_experts(world, tmp_path) -> Path:
    dst = tmp_path / "experts"
    shutil.copytree(world["experts"], dst)
    return dst


def test_bank_holds_every_expert_as_one_row(world):
    bank = load_bank(str(world["experts"]))
    assert bank.names == ("down", "same", "up")
    assert bank.layout.kind == "lora"
    assert bank.matrix.shape == (3, bank.layout.n_params) and bank.matrix.dtype == np.float32
    from safetensors.numpy import load_file

    up = load_file(str(world["experts"] / "up" / "adapter_model.safetensors"))
    row = bank.layout.split(bank.matrix[2])
    assert set(row) == set(up)
    for k in up:
        assert np.array_equal(row[k], up[k])


def test_experts_given_as_a_list(world):
    bank = load_bank([str(world["experts"] / "up"), str(world["experts"] / "down")])
    assert bank.names == ("up", "down")


def test_truncated_safetensors_is_named(world, tmp_path):
    d = copy_experts(world, tmp_path)
    f = d / "up" / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(UserError) as err:
        load_bank(str(d))
    assert str(f) in str(err.value)


def test_not_a_safetensors_file(world, tmp_path):
    d = copy_experts(world, tmp_path)
    (d / "up" / "adapter_model.safetensors").write_text("hello, I am not a tensor file")
    with pytest.raises(UserError, match="not a valid safetensors file"):
        load_bank(str(d))


def test_pickle_experts_are_refused_not_unpickled(world, tmp_path):
    d = copy_experts(world, tmp_path)
    (d / "up" / "adapter_model.safetensors").unlink()
    (d / "up" / "adapter_model.bin").write_bytes(b"\x80\x04 would be a pickle")
    with pytest.raises(UserError, match="pickle checkpoints are refused"):
        load_bank(str(d))
    with pytest.raises(UserError, match="pickle checkpoints are refused"):
        load_bank([str(d / "down"), str(d / "up" / "adapter_model.bin")])


def test_missing_expert_and_missing_weights(world, tmp_path):
    d = copy_experts(world, tmp_path)
    with pytest.raises(UserError, match="expert not found"):
        load_bank([str(d / "up"), str(d / "nope")])
    (d / "up" / "adapter_model.safetensors").unlink()
    with pytest.raises(UserError, match="missing adapter weights"):
        load_bank(str(d))


def test_mismatched_rank_is_refused(world, tmp_path):
    d = copy_experts(world, tmp_path)
    train_lora(world["base"], d / "rank8", ["up"], steps=1, rank=8)
    with pytest.raises(UserError, match="'r' is 8 but down has 4"):
        load_bank(str(d))


def test_mismatched_targets_are_refused(world, tmp_path):
    d = copy_experts(world, tmp_path)
    cfg_file = d / "up" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["target_modules"] = ["q_proj"]
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="'target_modules'"):
        load_bank(str(d))


def test_mismatched_shapes_are_refused(world, tmp_path):
    d = copy_experts(world, tmp_path)
    other = make_base(tmp_path / "wide_base", hidden=64)
    train_lora(other, d / "wide", ["up"], steps=1)
    cfg_file = d / "wide" / "adapter_config.json"  # hide the different base: shapes must still catch it
    cfg = json.loads(cfg_file.read_text())
    cfg["base_model_name_or_path"] = json.loads((d / "up" / "adapter_config.json").read_text())["base_model_name_or_path"]
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"has shape .*\(different rank or base model"):
        load_bank(str(d))


def test_experts_for_a_different_base_are_refused(world, tmp_path):
    other = make_base(tmp_path / "wide_base", hidden=64)
    bank = load_bank(str(world["experts"]))
    with pytest.raises(UserError, match="does not fit base weight"):
        check_against_base(bank.layout, other)
    check_against_base(bank.layout, world["base"])  # the right base passes


def test_nan_weights_are_refused(world, tmp_path):
    from safetensors.torch import load_file, save_file

    d = copy_experts(world, tmp_path)
    f = d / "up" / "adapter_model.safetensors"
    t = load_file(str(f))
    k = next(iter(t))
    t[k][0, 0] = float("nan")
    save_file(t, str(f))
    with pytest.raises(UserError, match="NaN"):
        load_bank(str(d))


def test_too_few_experts(world, tmp_path):
    d = tmp_path / "one"
    shutil.copytree(world["experts"] / "up", d / "up")
    with pytest.raises(UserError, match="at least 2 experts"):
        load_bank(str(d))


def test_full_weight_experts(world, tmp_path):
    from transformers import AutoModelForCausalLM

    for i in range(2):
        m = AutoModelForCausalLM.from_pretrained(world["base"])
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01 * (i + 1))
        m.save_pretrained(tmp_path / "full" / f"e{i}")
    bank = load_bank(str(tmp_path / "full"))
    assert bank.layout.kind == "full"
    check_against_base(bank.layout, world["base"])


def test_the_one_trainer_shows_its_progress_and_loss(world, tmp_path, capsys):
    from modelswarm.train import TINY, replace, train_lora

    info = train_lora(world["base"], [("3^", "4"), ("5^", "6")], tmp_path / "e", replace(TINY, steps=3),
                      progress=True, label="e")
    out = capsys.readouterr().out
    assert "e" in out and "3/3" in out and f"loss {info['final_loss']:.4f}"[:9] in out
    assert (tmp_path / "e" / "adapter_model.safetensors").is_file() and info["examples"] == 2
