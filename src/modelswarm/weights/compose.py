"""Coefficients -> weights, written in place into a loaded model.

The model's expert-shaped parameters are rebound as views into one flat buffer, so a
particle is materialised by n fused multiply-adds over that buffer: no allocation, no
reload, no disk. The same arithmetic (compose_into) serves the exporter, so an exported
checkpoint holds bit-for-bit the weights that were scored. A row of n * K coefficients
(`swarm.granularity: layers`) composes each contiguous group of layers with its own n
(layer_groups.py), with the same arithmetic per run of the buffer.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import UserError
from .experts import BankLayout
from .layer_groups import runs


def compose_into(out: torch.Tensor, bank: torch.Tensor, coeffs: Sequence[float]) -> torch.Tensor:
    """out <- sum_j coeffs[j] * bank[j], elementwise, so the result does not depend on threads."""
    coeffs = [float(c) for c in coeffs]
    if len(coeffs) != bank.shape[0]:
        raise ValueError(f"{len(coeffs)} coefficients for {bank.shape[0]} experts")
    torch.mul(bank[0], coeffs[0], out=out)
    for j in range(1, len(coeffs)):
        out.add_(bank[j], alpha=coeffs[j])
    return out


def compose_row(out: torch.Tensor, bank: torch.Tensor, coeffs: Sequence[float], layout: BankLayout) -> torch.Tensor:
    """compose_into run by run of the buffer (layer_groups.runs): a global row (n coefficients)
    in one pass, a layer row (n * K) each run with its group's coefficients."""
    for start, stop, row in runs(coeffs, bank.shape[0], layout.keys, layout.sizes):
        compose_into(out[start:stop], bank[:, start:stop], row)
    return out


def bank_tensor(matrix: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """The bank as a torch tensor; on CPU it shares the (read-only, object-store) memory."""
    with warnings.catch_warnings():
        # torch warns that the object-store array is read-only; we never write into the bank
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(matrix)
    return t.to(device) if str(device) != "cpu" else t


def compose_numpy(matrix: np.ndarray, coeffs: Sequence[float], layout: BankLayout | None = None) -> np.ndarray:
    """The composed flat float32 vector, same arithmetic as the workers use (a layer row needs the layout)."""
    out = torch.empty(matrix.shape[1], dtype=torch.float32)
    coeffs = [float(c) for c in coeffs]
    if layout is None:
        compose_into(out, bank_tensor(matrix), coeffs)
    else:
        compose_row(out, bank_tensor(matrix), coeffs, layout)
    return out.numpy()


def model_parameters_for(model: torch.nn.Module, layout: BankLayout) -> list[torch.nn.Parameter]:
    """The model parameter that each bank key writes to, in bank order.

    For LoRA experts PEFT's own get_peft_model_state_dict names the live tensors as the
    adapter file does (x.lora_A.weight for x.lora_A.default.weight, lm_head.weight for a
    modules_to_save copy, x.base_layer.bias for a trained bias); its tensors share storage
    with the parameters, which is how they are found."""
    if layout.kind == "lora":
        from peft import get_peft_model_state_dict

        by_storage = {p.data_ptr(): p for p in model.parameters()}
        named = {k: by_storage.get(t.data_ptr()) for k, t in get_peft_model_state_dict(model).items()}
    else:
        named = dict(model.named_parameters(remove_duplicate=False))
    params = []
    for key in layout.keys:
        param = named.get(key)
        if param is None:
            raise UserError(layout.names[0], f"tensor {key} matches no parameter of the loaded model")
        params.append(param)
    return params


class Composer:
    """Owns the flat buffer behind the model's expert-shaped parameters; the composer of
    coefficient rows (candidates.CoefficientRow) in the worker."""

    def __init__(self, model: torch.nn.Module, layout: BankLayout, matrix: np.ndarray):
        self.layout = layout
        params = model_parameters_for(model, layout)
        device, dtype = params[0].device, params[0].dtype
        self.bank = bank_tensor(matrix, device)
        self.flat = torch.empty(layout.n_params, dtype=dtype, device=device)
        # compose in float32 even for a bf16/fp16 model, then cast once
        self.work = self.flat if dtype == torch.float32 else torch.empty(layout.n_params, device=device)
        seen: set[int] = set()
        off = 0
        for param, shape, size in zip(params, layout.shapes, layout.sizes):
            if id(param) in seen:  # a tied weight listed twice (e.g. lm_head / embed_tokens)
                off += size
                continue
            seen.add(id(param))
            if tuple(param.shape) != tuple(shape):
                raise UserError(layout.names[0], f"expert tensor of shape {list(shape)} does not fit "
                                                 f"model parameter of shape {list(param.shape)}")
            param.data = self.flat[off:off + size].view(shape)
            param.requires_grad_(False)
            off += size

    @torch.no_grad()
    def apply(self, row: Any) -> None:
        """row: a CoefficientRow or its coefficients."""
        coeffs = [float(c) for c in getattr(row, "coeffs", row)]
        compose_row(self.work, self.bank, coeffs, self.layout)
        if self.work is not self.flat:
            self.flat.copy_(self.work)

    def restore(self) -> None:
        """Nothing to undo: the next apply rewrites the whole buffer."""
