"""Write a particle as a checkpoint other tools load: a PEFT adapter dir or an HF model dir.

The weights are composed with the same arithmetic the workers use (compose.compose_numpy),
and the safetensors metadata records the experts and coefficients, so an export is
self-describing and reproducible from the run's coefficients alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import save_file

from .card import provenance, run_provenance, write_card
from ..weights.compose import compose_numpy
from ..errors import UserError
from ..weights.experts import ADAPTER_CONFIG, ADAPTER_WEIGHTS, ExpertBank
from ..io import atomic_write_dir, dumps

# files copied from the base model dir into a full-weight export so it loads on its own
MODEL_SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "tokenizer.model", "chat_template.jinja", "vocab.json", "merges.txt")


def composed_tensors(bank: ExpertBank, coeffs: Sequence[float]) -> dict[str, torch.Tensor]:
    flat = compose_numpy(bank.matrix, coeffs, bank.layout)  # a layer row (n * K) by its groups
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bank.layout.split(flat).items()}


def export_particle(
    out_dir: Path,
    bank: ExpertBank,
    coeffs: Sequence[float],
    base_model: str,
    score: Optional[float] = None,
    extra: Optional[dict[str, Any]] = None,
    config: Any = None,
) -> Path:
    """Atomically (re)write out_dir with the composed particle, its provenance and model card.
    config: the run's, for the provenance (versions, dtype, seed, data) and the base model's hub id."""
    tensors = composed_tensors(bank, coeffs)
    made = run_provenance(config) if config else {}
    meta = provenance(bank, coeffs, score, {**(extra or {}), **made})

    def fill(tmp: Path) -> None:
        if bank.layout.kind == "lora":
            cfg = dict(bank.layout.adapter_config)
            cfg["base_model_name_or_path"] = getattr(config, "base_model_id", None) or str(base_model)
            cfg["inference_mode"] = True
            (tmp / ADAPTER_CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
            save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata=meta)
        else:
            for name in MODEL_SIDE_FILES:
                src = Path(base_model) / name
                if src.is_file():
                    shutil.copy2(src, tmp / name)
            save_file(tensors, str(tmp / "model.safetensors"), metadata=meta)
        (tmp / "modelswarm.json").write_text(dumps(json.loads(meta["modelswarm"]), indent=2) + "\n")
        write_card(tmp, json.loads(meta["modelswarm"]), out_dir)

    atomic_write_dir(out_dir, fill)
    return out_dir


def read_provenance(path: Path) -> dict[str, Any]:
    """The experts and coefficients recorded in an export's safetensors metadata."""
    from safetensors import safe_open

    path = Path(path)
    file = path / ADAPTER_WEIGHTS if (path / ADAPTER_WEIGHTS).exists() else path / "model.safetensors"
    with safe_open(str(file), framework="pt") as f:
        return json.loads((f.metadata() or {})["modelswarm"])


def export_merged(run_dir: Path) -> Path:
    """RUN_DIR/merged: base + best adapter merged into one plain HF model directory."""
    from ..engine.models import load_tokenizer
    from ..search.state import RunDir
    from .verify import load_checkpoint

    rd = RunDir(run_dir)
    config = rd.load_config()
    if not (rd.best_dir / ADAPTER_CONFIG).is_file():
        raise UserError(rd.best_dir, "no LoRA adapter here to merge (full-weight runs export a model already)")
    model = load_checkpoint(config.base_model, rd.best_dir).merge_and_unload()
    tok = load_tokenizer(config.base_model)

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        info = {**json.loads((rd.best_dir / "modelswarm.json").read_text()), **run_provenance(config), "merged": True}
        (tmp / "modelswarm.json").write_text(json.dumps(info, indent=2) + "\n")
        write_card(tmp, info, rd.path / "merged")

    atomic_write_dir(rd.path / "merged", fill)
    return rd.path / "merged"
