"""Every export carries a model card (README.md, Hugging Face format) and its provenance
(modelswarm.json), names the base model by its hub id when the config gives one, and
`verify --dtype` re-scores in the dtype a user deploys in. No Ray: the run directory is
written by the same functions the end of a run calls."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelswarm.export.card import add_scores
from modelswarm.config import load_config
from modelswarm.weights.experts import load_bank
from modelswarm.export.particle import export_merged, export_particle
from modelswarm.search.state import RunDir
from modelswarm.export.verify import check_dtype, rescore_in_dtype, score_splits, verify_run

from conftest import write_config

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def card_of(path: Path) -> tuple[dict, str]:
    text = (path / "README.md").read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> dict[str, Path]:
    """The tiny world with briefly trained experts: these tests read files, not skills."""
    from modelswarm.tiny import build_world

    return build_world(tmp_path_factory.mktemp("small_world"), n_val=16, n_test=16, steps=10)


@pytest.fixture(scope="module")
def run(small_world, tmp_path_factory):
    """A finished run directory (config, experts, best/, summary.json) scored in float32."""
    tmp = tmp_path_factory.mktemp("card")
    cfg = load_config(write_config(tmp / "c.yaml", small_world, tmp / "runs", name="carded", base_model_id=HUB_ID,
                                   workers={"dtype": "float32"}))
    bank = load_bank(cfg.experts)
    rd = RunDir(cfg.run_dir)
    rd.create(cfg, tuple(bank.names), tuple(str(small_world["experts"] / n) for n in bank.names))
    coeffs = [0.6, 0.3, 0.1][: len(bank.names)]
    export_particle(rd.best_dir, bank, coeffs, cfg.base_model, extra={"run": cfg.name}, config=cfg)
    scores = score_splits(cfg, rd.best_dir, ["val", "test"])
    export_particle(rd.best_dir, bank, coeffs, cfg.base_model, score=scores["val"], extra={"run": cfg.name},
                    config=cfg)
    add_scores(rd.best_dir, test=scores["test"])
    rd.summary_file.write_text(json.dumps({"best": {"score": scores["val"]},
                                           "baselines": {"test": {"global best": scores["test"]}}}))
    return cfg, bank, rd, coeffs, scores


def test_an_adapter_export_names_the_base_model_by_its_hub_id(run):
    cfg, _, rd, _, _ = run
    assert json.loads((rd.best_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == HUB_ID


def test_the_model_card_has_front_matter_recipe_scores_dtype_and_loading_lines(run):
    cfg, bank, rd, coeffs, scores = run
    front, body = card_of(rd.best_dir)
    assert front["base_model"] == HUB_ID and front["library_name"] == "peft"
    assert "modelswarm" in front["tags"] and "lora" in front["tags"]
    for name, c in zip(bank.names, coeffs):
        assert f"| `{name}` | {c:.6f} |" in body
    assert f"| validation | {scores['val']:.4f} |" in body and f"| test | {scores['test']:.4f} |" in body
    assert "Measured in **float32**" in body
    assert f'AutoModelForCausalLM.from_pretrained("{rd.best_dir}", dtype="float32")' in body
    assert f'AutoTokenizer.from_pretrained("{HUB_ID}")' in body


def test_modelswarm_json_records_versions_dtype_seed_and_data_checksums(run, small_world):
    import peft
    import torch
    import transformers

    from modelswarm import __version__

    cfg, _, rd, _, scores = run
    info = json.loads((rd.best_dir / "modelswarm.json").read_text())
    assert info["modelswarm_version"] == __version__ and info["dtype"] == "float32" and info["seed"] == cfg.seed
    assert info["versions"] == {"torch": torch.__version__, "transformers": transformers.__version__,
                                "peft": peft.__version__}
    for split in ("val", "test"):
        f = small_world[split]
        assert info["data_sha256"][str(f)] == hashlib.sha256(Path(f).read_bytes()).hexdigest()
    assert info["test"] == scores["test"]


def test_an_export_without_a_hub_id_keeps_the_local_path_and_says_so(run, tmp_path):
    cfg, bank, _, coeffs, _ = run
    local = cfg.model_copy(update={"base_model_id": None})
    out = export_particle(tmp_path / "x", bank, coeffs, local.base_model, score=0.5, config=local)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == local.base_model
    front, body = card_of(out)
    assert "base_model" not in front and "set `base_model_id`" in body
    # the card's loading line: transformers reads the adapter and its base from the directory
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out), dtype="float32")
    assert any("lora_" in name for name, _ in model.named_parameters())


def test_the_merged_export_has_a_card_for_transformers(run):
    cfg, _, rd, _, scores = run
    out = export_merged(rd.path)
    front, body = card_of(out)
    assert front["base_model"] == HUB_ID and front["library_name"] == "transformers"
    assert "merged into the base model" in body and f"| test | {scores['test']:.4f} |" in body
    assert json.loads((out / "modelswarm.json").read_text())["merged"] is True


def test_a_delta_merge_export_names_the_method_and_its_parameters(run, tmp_path):
    from modelswarm.export.card import run_provenance
    from modelswarm.compare.export import export_delta_merge

    cfg, bank, _, _, _ = run
    from modelswarm.weights.candidates import DeltaMerge

    merge = DeltaMerge(method="ties", scale=0.8, density=0.5)
    out = export_delta_merge(tmp_path / "ties", bank, merge, cfg.base_model,
                             {"compare": "c", "method": "ties", "seed": 0, "val": 0.4, **run_provenance(cfg)})
    front, body = card_of(out)
    assert front["base_model"] == HUB_ID and front["library_name"] == "transformers"
    assert "**ties**" in body and "| density | 0.5 |" in body and "| scale | 0.8 |" in body
    assert "| validation | 0.4000 |" in body


def test_verify_in_another_dtype_reports_both_scores_and_the_difference(run):
    cfg, _, rd, _, scores = run
    rows = verify_run(rd.path)
    assert [r[3] for r in rows] == [True, True]
    lines = rescore_in_dtype(rd.path, "bfloat16", rows)
    other = score_splits(cfg, rd.best_dir, ["val", "test"], "bfloat16")
    for line, split in zip(lines, ("val", "test")):
        assert line == (f"{split}: float32 {scores[split]:.6f}, bfloat16 {other[split]:.6f}, "
                        f"difference {other[split] - scores[split]:+.6f}")


@pytest.mark.slow
def test_verify_dtype_on_the_command_line(run):
    _, _, rd, _, _ = run
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "verify", str(rd.path), "--dtype", "bfloat16"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok") == 2 and "val: float32" in r.stdout and "difference" in r.stdout
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "verify", str(rd.path), "--dtype", "fp8"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--dtype" in r.stderr


def test_an_unknown_dtype_is_refused_before_any_scoring():
    from modelswarm.errors import UserError

    assert check_dtype(None) and check_dtype("float16")
    with pytest.raises(UserError):
        check_dtype("int8")


def test_re_exporting_the_global_best_keeps_the_test_score_the_run_recorded(tmp_path):
    from modelswarm.export.card import recorded_scores

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"best": {"coefficients": [0.5, 0.25]},
                                   "baselines": {"test": {"global best": 0.375}}}))
    assert recorded_scores(summary, [0.5, 0.25]) == {"test": 0.375}
    assert recorded_scores(summary, [0.5, 0.0]) == {}  # another particle: its test score is not known
    assert recorded_scores(tmp_path / "none.json", [0.5, 0.25]) == {}
