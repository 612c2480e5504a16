"""Prompt token ids: through the tokenizer's chat template when there is one."""

from __future__ import annotations

from typing import Any

from ..sections import EngineConfig
from ..errors import UserError


def uses_chat_template(tokenizer: Any, config: EngineConfig) -> bool:
    if config.chat_template == "off":
        return False
    has = bool(getattr(tokenizer, "chat_template", None))
    if config.chat_template == "on" and not has:
        raise UserError("utility.chat_template", "is 'on' but the tokenizer has no chat template")
    return has


def prompt_ids(tokenizer: Any, text: str, config: EngineConfig) -> list[int]:
    """Token ids of a prompt, through the chat template when there is one."""
    if uses_chat_template(tokenizer, config):
        messages = ([{"role": "system", "content": config.system_prompt}] if config.system_prompt else [])
        messages.append({"role": "user", "content": text})
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(rendered, add_special_tokens=False)["input_ids"]
    if config.system_prompt:
        text = config.system_prompt + "\n" + text
    return tokenizer(text, add_special_tokens=True)["input_ids"]
