"""Loading the base model and tokenizer, as a worker, `plan` and the demo use them."""

from __future__ import annotations

import torch

from .experts import BankLayout

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(base_model: str, layout: BankLayout, device: torch.device, dtype: torch.dtype):
    """Base model, wrapped as a PEFT model for LoRA experts; weights come from the bank later."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if layout.kind == "lora":
        from peft import get_peft_config, get_peft_model

        cfg = dict(layout.adapter_config)
        cfg["inference_mode"] = True
        cfg["base_model_name_or_path"] = base_model
        known = set(get_peft_config({"peft_type": "LORA"}).to_dict())  # drop fields of newer PEFTs
        model = get_peft_model(model, get_peft_config({k: v for k, v in cfg.items() if k in known}))
    model.to(device)
    model.eval()
    return model


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
