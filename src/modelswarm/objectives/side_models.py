"""What reward_model and llm_judge share: prompt-only data, the particle's responses, and the
coordinator's check of their second model's directory (the engine loads it in a worker,
engine/side_models.py).

Not a utility kind (registers nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from .data import read_jsonl, require


def load_prompts(path) -> list[dict[str, Any]]:
    """JSONL lines {"prompt": str, ...} (the official rm.json and human_*.json items)."""
    examples = []
    for lineno, obj in read_jsonl(path):
        if not require(obj, "prompt", str, f"{path}:{lineno}").strip():
            raise UserError(f"{path}:{lineno}", "field 'prompt' is empty")
        examples.append(obj)
    return examples


def responses(engine, examples, max_new_tokens: int) -> list[str]:
    """The particle's reply to each prompt: chat template as utility.chat_template says,
    greedy, up to utility.max_new_tokens, stripped (the official batch_generate_chat_template)."""
    prompts = [engine.prompt_ids(ex["prompt"]) for ex in examples]
    return engine.generate_texts(prompts, max_new_tokens=max_new_tokens)


def check_model_dir(path: str, key: str, family: str) -> Any:
    """The transformers config of a local model directory for `family` ("causal_lm" or
    "sequence_classification"); a UserError naming the key when it is missing or does not fit.
    Reads config.json and the tokenizer files, no weights."""
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto import modeling_auto

    if not Path(path, "config.json").is_file():
        raise UserError(key, f"'{path}' is not a local model directory (no config.json)")
    try:
        cfg = AutoConfig.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001  any failure to read it is the user's to fix
        raise UserError(key, f"'{path}': config.json does not load ({str(exc).splitlines()[0]})") from None
    names = {"causal_lm": modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
             "sequence_classification": modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES}[family]
    if cfg.model_type not in names:
        raise UserError(key, f"'{path}': a {cfg.model_type} model has no AutoModelFor"
                             f"{''.join(w.title() for w in family.split('_'))} class")
    archs = getattr(cfg, "architectures", None) or []
    suffix = {"causal_lm": "ForCausalLM", "sequence_classification": "ForSequenceClassification"}[family]
    if archs and not any(a.endswith(suffix) for a in archs):
        raise UserError(key, f"'{path}' holds a {archs[0]}, not a *{suffix}")
    if not any(Path(path, f).is_file() for f in ("model.safetensors", "model.safetensors.index.json")):
        raise UserError(key, f"'{path}' has no model.safetensors")
    try:
        AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001
        raise UserError(key, f"'{path}': its tokenizer does not load ({str(exc).splitlines()[0]})") from None
    return cfg


def model_mb(path: str) -> float:
    """Size of a model directory's weights (float32 as stored: the safetensors files)."""
    files = list(Path(path).glob("*.safetensors"))
    return round(sum(f.stat().st_size for f in files) / 2**20, 1)


def resolve(path: str) -> str:
    return str(Path(path).expanduser().resolve())
