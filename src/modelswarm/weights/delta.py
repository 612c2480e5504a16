"""Merges in weight-delta space, written in place into a loaded model (no reload).

The swarm's own composition (compose.py) combines LoRA A and B matrices separately, so a
particle stays a rank-r adapter. Data-free merges (task arithmetic, TIES, DARE-TIES) work
on each expert's change to the base weights instead:

    LoRA:  delta_j = transpose(B_j @ A_j, fan_in_fan_out) * scaling   per target module
    full:  delta_j = W_j - W0                                        per tensor

and the model gets W0 + merge(delta_1..delta_n), which is not rank r. `DeltaComposer` keeps
W0 of the touched tensors (taken lazily, on its first use, so a plain swarm run pays
nothing), turns the LoRA branch off by writing A = B = 0 through the regular Composer, and
writes W0 + merged delta into the base weights per evaluation. `restore()` puts W0 back
before the next coefficient-space evaluation (the worker calls it when the next candidate
is of another type). A later `composition.lora_mode: delta` (the
swarm's coefficients over B_j A_j) can reuse it: `linear` is that merge.

The merge arithmetic is each method's (merges/: PEFT's peft.utils.merge_utils, the
functions behind add_weighted_adapter, with TIES' trim and DARE's rescale done there, each
saying why), tensor by tensor; tests/test_delta.py checks it against a direct computation
of the documented formulas. DARE's random masks are drawn from torch's
generator seeded with the merge's seed, module by module in a fixed order, so a merge is
the same in every worker and in the export.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

import torch

from .. import merges
from .candidates import DeltaMerge
from ..errors import UserError
from .experts import BankLayout


def merge_tensors(deltas: torch.Tensor, spec: DeltaMerge) -> torch.Tensor:
    """merge(delta_1..delta_n) for one tensor; deltas is (n, *shape)."""
    n = deltas.shape[0]
    w = torch.tensor(spec.weights if spec.weights is not None else [spec.scale] * n, dtype=deltas.dtype)
    return merges.method(spec.method).merge(deltas, w, spec)


def lora_modules(model: torch.nn.Module, layout: BankLayout) -> list[tuple[str, Any, int, int]]:
    """(name, PEFT LoRA module, bank offset of A, of B) for every adapted linear layer."""
    from peft.tuners.lora import LoraLayer

    offsets, off = {}, 0
    for key, size in zip(layout.keys, layout.sizes):
        offsets[key] = off
        off += size
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or "default" not in getattr(module, "lora_A", {}):
            continue
        a, b = f"{name}.lora_A.weight", f"{name}.lora_B.weight"
        if a in offsets and b in offsets:
            out.append((name, module, offsets[a], offsets[b]))
    return out


class DeltaComposer:
    """Writes W0 + merge(deltas) into the model's weights; see the module docstring."""

    def __init__(self, model: torch.nn.Module, layout: BankLayout, bank: torch.Tensor, composer,
                 base_model: Optional[str] = None):
        self.layout, self.bank, self.composer = layout, bank, composer
        self.model = model
        self.base_model = base_model
        self.active = False
        self._w0: Optional[list[torch.Tensor]] = None
        if layout.kind == "lora":
            extra = [k for k in layout.keys if ".lora_A." not in k and ".lora_B." not in k]
            if extra:  # a modules_to_save copy or a trained bias is not a delta of B A
                raise UserError(layout.names[0], f"delta-space merges need adapters of lora_A/lora_B tensors "
                                                 f"only; this one also has {extra[0]}")
            self.modules = lora_modules(model, layout)
            if not self.modules:
                raise UserError(layout.names[0], "no LoRA module of the loaded model matches the bank")

    # --- W0 -------------------------------------------------------------------------------

    def _targets(self) -> list[torch.Tensor]:
        """The tensors a merge writes: base_layer weights (LoRA) or the composer's flat buffer pieces (full)."""
        if self.layout.kind == "lora":
            return [m.base_layer.weight.data for _, m, _, _ in self.modules]
        out, off = [], 0
        for shape, size in zip(self.layout.shapes, self.layout.sizes):
            out.append(self.composer.flat[off:off + size].view(shape))
            off += size
        return out

    def _base_weights(self) -> list[torch.Tensor]:
        if self._w0 is None:
            if self.layout.kind == "lora":  # the base layers are never written by the composer
                self._w0 = [t.detach().clone() for t in self._targets()]
            else:  # the composer rebound the parameters: read W0 from the base model's files
                self._w0 = base_tensors(self.base_model, self.layout)
        return self._w0

    # --- deltas ---------------------------------------------------------------------------

    def deltas(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(target index, (n, *shape) float32 deltas) for every tensor a merge writes."""
        n = self.bank.shape[0]
        if self.layout.kind == "lora":
            from peft.utils.other import transpose

            for i, (_, module, a_off, b_off) in enumerate(self.modules):
                r = module.r["default"]
                w = module.base_layer.weight
                a = self.bank[:, a_off:a_off + r * module.in_features].reshape(n, r, module.in_features)
                b = self.bank[:, b_off:b_off + module.out_features * r].reshape(n, module.out_features, r)
                d = torch.bmm(b.float(), a.float()) * module.scaling["default"]
                yield i, torch.stack([transpose(x, module.fan_in_fan_out) for x in d]).reshape(n, *w.shape)
        else:
            w0 = self._base_weights()
            off = 0
            for i, (shape, size) in enumerate(zip(self.layout.shapes, self.layout.sizes)):
                yield i, self.bank[:, off:off + size].float().reshape(n, *shape) - w0[i].float()
                off += size

    @torch.no_grad()
    def apply(self, spec: DeltaMerge) -> None:
        w0 = self._base_weights()
        targets = self._targets()
        if self.layout.kind == "lora" and not self.active:
            self.composer.apply([0.0] * self.bank.shape[0])  # A = B = 0: the LoRA branch adds nothing
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(spec.seed)
        try:
            for i, d in self.deltas():
                merged = merge_tensors(d, spec)
                targets[i].copy_((w0[i].float() + merged).to(targets[i].dtype))
        finally:
            torch.random.set_rng_state(gen_state)
        self.active = True

    @torch.no_grad()
    def restore(self) -> None:
        """W0 back into the base weights (LoRA); the next Composer.apply rewrites all of a full model."""
        if self.active and self.layout.kind == "lora":
            for t, w in zip(self._targets(), self._w0 or []):
                t.copy_(w)
        self.active = False


def base_tensors(base_model: Optional[str], layout: BankLayout) -> list[torch.Tensor]:
    """W0 of a full-weight bank's tensors, read from the base model's safetensors files."""
    from pathlib import Path

    from safetensors import safe_open

    if base_model is None:
        raise ValueError("full-weight delta merges need the base model path")
    base = Path(base_model)
    index = base / "model.safetensors.index.json"
    files = ([base / s for s in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
             if index.is_file() else [base / "model.safetensors"])
    found: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            for k in sf.keys():
                if k in layout.keys or k.endswith("embed_tokens.weight"):
                    found[k] = sf.get_tensor(k).float()
    out = []
    for key in layout.keys:
        if key not in found and key.endswith("lm_head.weight"):  # tied to the input embeddings
            key = next(k for k in found if k.endswith("embed_tokens.weight"))
        out.append(found[key])
    return out

