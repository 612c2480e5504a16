"""The parts of a causal LM that scoring runs separately: the decoder stack and the LM head."""

from __future__ import annotations

import functools
import inspect

import torch


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers *ForCausalLM inside a PeftModel (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder stack, lm_head): scoring runs the stack, then the head only where needed."""
    lm = causal_lm(model)
    return getattr(lm, lm.base_model_prefix), lm.get_output_embeddings()


def cache_keyword(backbone: torch.nn.Module) -> str:
    """The forward's name for the KV cache: `cache` where transformers has renamed it (5.25
    warns that `past_key_values` goes in 5.40), `past_key_values` before."""
    return _cache_keyword(type(backbone))


@functools.lru_cache(maxsize=None)
def _cache_keyword(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"
