"""A sequence classifier's single logit per sequence (a reward model's raw reward)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..sections import EngineConfig
from .batching import length_batches


@torch.inference_mode()
def sequence_scores(model: torch.nn.Module, seqs: Sequence[Sequence[int]], config: EngineConfig) -> list[float]:
    """The first logit of each sequence, in right-padded batches of similar length."""
    device = next(model.parameters()).device
    pid = model.config.pad_token_id
    out: list[float] = [0.0] * len(seqs)
    # without a pad token the model cannot find a padded row's last token: one row at a time
    batches = length_batches([len(s) for s in seqs], config) if pid is not None else [[k] for k in range(len(seqs))]
    for idx in batches:
        width = max(len(seqs[k]) for k in idx)
        ids = torch.full((len(idx), width), pid if pid is not None else 0, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for b, k in enumerate(idx):
            ids[b, :len(seqs[k])] = torch.tensor(seqs[k])
            mask[b, :len(seqs[k])] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for b, k in enumerate(idx):
            out[k] = float(logits[b, 0])
    return out
