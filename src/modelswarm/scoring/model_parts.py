"""The parts of a causal LM that scoring runs separately: the decoder stack and the LM head."""

from __future__ import annotations

import torch


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers *ForCausalLM inside a PeftModel (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder stack, lm_head): scoring runs the stack, then the head only where needed."""
    lm = causal_lm(model)
    return getattr(lm, lm.base_model_prefix), lm.get_output_embeddings()
