"""The one loader of side models: a second model a worker holds next to the particle (a
reward model, a judge), on the particle's device and in its dtype."""

from __future__ import annotations

from typing import Any, Literal

import torch

Family = Literal["causal_lm", "sequence_classification"]
AUTO_CLASSES = {"causal_lm": "AutoModelForCausalLM", "sequence_classification": "AutoModelForSequenceClassification"}


def load_side_model(path: str, family: Family, like: torch.nn.Module) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, tokenizer) of the local directory `path`, placed like `like`.

    A causal LM gets the particle's tokenizer treatment (padding with EOS when it has no pad
    token); a classifier keeps its tokenizer as it is and learns its pad id from it, so it
    can find the last token of a padded row."""
    import transformers

    from .models import load_tokenizer

    param = next(like.parameters())
    if family == "causal_lm":
        tok = load_tokenizer(path)
    else:
        tok = transformers.AutoTokenizer.from_pretrained(path)
    model = getattr(transformers, AUTO_CLASSES[family]).from_pretrained(path, dtype=param.dtype)
    if family == "sequence_classification" and model.config.pad_token_id is None and tok.pad_token_id is not None:
        model.config.pad_token_id = tok.pad_token_id
    return model.to(param.device).eval(), tok
