"""Score a checkpoint through the loaders other tools use: PeftModel.from_pretrained for an
adapter, AutoModelForCausalLM.from_pretrained for a full model. This is the independent path
that checks an export: it shares no weight-handling code with the search."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import Config
from .errors import UserError
from .experts import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from .utilities import make_utility
from .worker import load_tokenizer


def load_checkpoint(base_model: str, target: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    target = Path(target)
    if (target / "best").is_dir():  # a run directory
        target = target / "best"
    if (target / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        if not (target / ADAPTER_WEIGHTS).is_file():
            raise UserError(target / ADAPTER_WEIGHTS, "missing adapter weights")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model), str(target))
    elif (target / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(str(target))
    else:
        raise UserError(target, "not a PEFT adapter dir, an HF model dir or a run dir")
    return model.eval()


def score_checkpoint(config: Config, target: Path, split: str = "val") -> float:
    utility = make_utility(config.utility)
    path = config.utility.data if split == "val" else config.utility.test_data
    if path is None:
        raise UserError("utility.test_data", "is not set in the config")
    examples = utility.load(path)
    model = load_checkpoint(config.base_model, target)
    return utility.score(model, load_tokenizer(config.base_model), examples).value
