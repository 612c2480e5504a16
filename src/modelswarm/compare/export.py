"""Export a method's answer from a compare directory, with the same verbs as a run.

A coefficient-space answer is a PEFT adapter (LoRA) or an HF model (full), exactly as
`modelswarm export` writes a particle. A delta-space merge is not rank r, so it is a full
merged HF model: the base loaded as the workers load it, the merge written by the same
DeltaComposer, the (zeroed) LoRA branch merged away, saved with the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..weights.candidates import Candidate, CoefficientRow, DeltaMerge
from ..export.card import run_provenance, write_card
from ..errors import UserError
from ..io import atomic_write_dir, dumps
from ..search.state import RunDir


def pick_row(compare_dir: Path, method: Optional[str] = None, seed: Optional[int] = None) -> dict[str, Any]:
    rd = RunDir(compare_dir)
    result = rd.read_json(rd.path / "compare.json")
    if method is None:
        if result.get("winner") is None:
            raise UserError(rd.path / "compare.json", "no winner recorded")
        method, seed = result["winner"]["method"], seed if seed is not None else result["winner"]["seed"]
    rows = [r for r in result["rows"] if r["method"] == method and (seed is None or r["seed"] == seed)]
    if not rows:
        have = sorted({(r["method"], r["seed"]) for r in result["rows"]})
        raise UserError("--method", f"no row {method} seed {seed} in {rd.path / 'compare.json'} (have: {have})")
    return max(rows, key=lambda r: r["val"] if r["val"] is not None else -1)


def export_compare(compare_dir: Path, out: Optional[Path] = None, method: Optional[str] = None,
                   seed: Optional[int] = None) -> tuple[Path, dict[str, Any]]:
    from ..weights.experts import load_bank
    from ..export.particle import export_particle

    rd = RunDir(compare_dir)
    cfg = rd.load_config()
    row = pick_row(compare_dir, method, seed)
    bank = load_bank(cfg.experts)
    rd.check_experts(bank.names)
    target = Path(out or rd.path / "export" / f"{row['method']}-seed{row['seed']}")
    extra = {"compare": cfg.name, "method": row["method"], "seed": row["seed"], "test": row.get("test")}
    candidate = Candidate.from_json(row)
    if isinstance(candidate, CoefficientRow):
        export_particle(target, bank, candidate.coeffs, cfg.base_model, score=row["val"], extra=extra, config=cfg)
    else:
        export_delta_merge(target, bank, candidate, cfg.base_model, {**extra, "val": row["val"], **run_provenance(cfg)})
    return target, row


def export_delta_merge(out: Path, bank, merge: DeltaMerge, base_model: str, extra: dict[str, Any]) -> Path:
    import torch

    from ..weights.compose import Composer
    from ..weights.delta import DeltaComposer
    from ..engine.models import load_model, load_tokenizer

    model = load_model(base_model, bank.layout, torch.device("cpu"), torch.float32)
    composer = Composer(model, bank.layout, bank.matrix)
    DeltaComposer(model, bank.layout, composer.bank, composer, base_model).apply(merge)
    if bank.layout.kind == "lora":
        model = model.merge_and_unload()  # A = B = 0: merging the branch adds nothing
    for p in model.parameters():  # views into the composer's one buffer would look tied to save_pretrained
        p.data = p.data.clone()
    tok = load_tokenizer(base_model)
    info = {"experts": list(bank.names), "merge": merge.to_dict(), "kind": bank.layout.kind, **extra}

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "modelswarm.json").write_text(dumps(info, indent=2) + "\n")
        write_card(tmp, info, Path(out))

    atomic_write_dir(Path(out), fill)
    return Path(out)
