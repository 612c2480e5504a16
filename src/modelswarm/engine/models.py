"""Loading the base model and tokenizer, as a worker, `plan` and the demo use them."""

from __future__ import annotations

import torch

from ..weights.experts import BankLayout

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether the device computes bfloat16 natively, and what says so. Without it bfloat16
    is emulated and slower than float32. torch has no public CPU check; its private ones are
    asked and a torch without them counts as no."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major >= 8, f"CUDA compute capability {major}.{minor} (bfloat16 from 8.0)"
    if device.type == "cpu":
        for flag, check in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")):
            if getattr(torch.cpu, check, lambda: False)():
                return True, f"the CPU has {flag}"
        return False, "the CPU has neither AVX512-BF16 nor AMX"
    return False, f"not known for {device.type}"


def resolve_dtype(name: str, device: torch.device) -> str:
    """`auto`: bfloat16 where the device runs it natively (native_bf16), else float32."""
    if name != "auto":
        return name
    return "bfloat16" if native_bf16(device)[0] else "float32"


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
