"""The scoring engine: one per worker, over the particle model, its tokenizer and the
engine's knobs (EngineConfig). Utilities hand it token ids and read back generated ids,
log-likelihoods or sequence scores; they never touch the model themselves.

Side models (a reward model, a judge) are engines too, loaded once per worker on first use
(`side`) and shared by every engine made from this one (`with_config`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from ..sections import EngineConfig
from .batching import pad_id
from .generate import generate_ids, generate_texts
from .loglik import Pair, mean_logprobs
from .prompts import prompt_ids, uses_chat_template
from .sequence_scores import sequence_scores
from .side_models import Family, load_side_model


class Engine:
    def __init__(self, model: torch.nn.Module, tokenizer: Any, config: EngineConfig,
                 side_models: Optional[dict[tuple[str, str], tuple[torch.nn.Module, Any]]] = None):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self._side = {} if side_models is None else side_models  # (path, family) -> (model, tokenizer)

    def with_config(self, config: EngineConfig) -> "Engine":
        """The same model, tokenizer and side models under other knobs (a multitask's part)."""
        return Engine(self.model, self.tokenizer, config, self._side)

    def side(self, path: str, family: Family) -> "Engine":
        """An engine over the side model at `path`, loaded on first use, placed like the particle."""
        key = (path, family)
        if key not in self._side:
            self._side[key] = load_side_model(path, family, like=self.model)
        model, tokenizer = self._side[key]
        return Engine(model, tokenizer, self.config, self._side)

    def uses_chat_template(self) -> bool:
        return uses_chat_template(self.tokenizer, self.config)

    def prompt_ids(self, text: str) -> list[int]:
        """Token ids of a prompt, through the chat template as chat_template says."""
        return prompt_ids(self.tokenizer, text, self.config)

    def continuation_ids(self, prompt: str, text: str) -> list[int]:
        """Token ids of `text` as the model writes it after `prompt` (a loglik continuation):
        after a space, unless the chat template opens the reply or the prompt ends in whitespace."""
        if not (self.uses_chat_template() or prompt[-1:].isspace()):
            text = " " + text
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate_ids(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, stops: Optional[set[int]] = None,
                     needs_more: Optional[Callable[[int, list[int]], bool]] = None) -> Iterator[tuple[int, list[int]]]:
        """(prompt index, greedily generated ids) as each row finishes (generate.py)."""
        return generate_ids(self.model, self.tokenizer, prompts, self.config, max_new_tokens=max_new_tokens,
                            stops=stops, needs_more=needs_more)

    def generate_texts(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
                       stops: Optional[set[int]] = None) -> list[str]:
        """Each prompt's decoded continuation, stripped."""
        return generate_texts(self.model, self.tokenizer, prompts, self.config, max_new_tokens=max_new_tokens,
                              stops=stops)

    def loglik(self, seqs: Sequence[Pair]) -> Iterator[tuple[int, list[float]]]:
        """seqs: (group, member, context ids, continuation ids). Yields (group, mean
        log-probability of each member's continuation tokens) as each group is complete."""
        return mean_logprobs(self.model, seqs, self.config, pad_id(self.tokenizer))

    def sequence_scores(self, seqs: Sequence[Sequence[int]]) -> list[float]:
        """A sequence classifier's first logit for each sequence (a reward model's reward)."""
        return sequence_scores(self.model, seqs, self.config)
