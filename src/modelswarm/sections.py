"""The config sections every floor reads: the frozen `Section` base and the engine's knobs.

The lowest config module: it imports pydantic and nothing of modelswarm, so the scoring
engine (engine/), the utilities and the run config (config.py) all build on it without
an import pointing upwards. `EngineConfig` holds how the engine batches sequences and
renders prompts; its keys are written under `utility:` (a utility's section extends it,
objectives/base.py), and the engine reads nothing else.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A config section: frozen, no unknown keys, no silent type coercion ("1" is not 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def replace(self, **changes: Any) -> "Section":
        """A copy with some keys changed, validated as if it had been read that way."""
        return type(self).model_validate({**self.model_dump(), **changes})


class EngineConfig(Section):
    """How the scoring engine batches forward passes and renders prompts."""

    batch_sequences: int = Field(16, ge=1, description="padded sequences, or prefix-tree rows, per forward pass")
    batch_tokens: Optional[int] = Field(
        None, ge=1, description="also cap a batch at this many padded prompt tokens, and a prefix-tree row at "
        "this many nodes (256 when unset); bounds activation and KV-cache memory when prompts are long")
    decode_rows: int = Field(16, ge=1, description="rows per greedy decode step (generation utilities)")
    head_rows: int = Field(16, ge=1, description="hidden states per pass through the LM head "
                           "(`multiple_choice`: its output is vocabulary-wide)")
    chat_template: Literal["auto", "on", "off"] = Field(
        "auto", description="`auto` (use the tokenizer's if it has one), `on`, `off`")
    system_prompt: Optional[str] = Field(None, description="system message for chat templates")
    prefix_sharing: bool = Field(True, description="run prompt prefixes shared by several examples once "
                                 "(tree attention; same marks); `false` runs every sequence on its own row")

    @property
    def engine(self) -> "EngineConfig":
        """Only the engine's keys (a utility section extends this class)."""
        if type(self) is EngineConfig:
            return self
        return EngineConfig.model_validate(self.model_dump(include=set(EngineConfig.model_fields)))
