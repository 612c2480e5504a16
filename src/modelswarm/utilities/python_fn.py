"""python: a user function `module:function` called as f(model, tokenizer, examples) -> float.

Examples are the JSONL objects as they are. The module is imported in each worker, so it
must be importable there (on a cluster: installed, or shipped with the Ray runtime_env).
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from ..config import UtilityParams
from ..errors import UserError
from .base import Score, Utility, register
from .data import read_jsonl


def sys_paths_for(config_path: Optional[Path]) -> list[str]:
    """Where a python utility's module is looked for: the working directory and the
    config's folder (a utility may live next to its config)."""
    paths = [os.getcwd()]
    if config_path is not None:
        paths.append(str(Path(config_path).resolve().parent))
    return paths


def resolve(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError("utility.function", f"cannot import module '{module_name}' ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError("utility.function", f"'{module_name}' has no function '{attr}'")
    return fn


@register("python")
class PythonFunction(Utility):
    class Params(UtilityParams):
        function: str = Field(description="`module:function`, called as f(model, tokenizer, examples) -> "
                              "float; the module is looked for in the working directory and next to the config")

        @field_validator("function")
        @classmethod
        def _spec(cls, v: str) -> str:
            if v.count(":") != 1 or not all(v.split(":")):
                raise ValueError("must be 'module:function'")
            return v

    def load(self, path):
        resolve(self.params.function)  # fail early, before any worker starts
        return [obj for _, obj in read_jsonl(path)]

    def score(self, model, tokenizer, examples, bound=None) -> Score:  # a user's function: no early exit
        value = resolve(self.params.function)(model, tokenizer, examples)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(self.params.function, f"returned {value!r}, not a number") from None
        if math.isnan(value):
            raise ValueError(f"{self.params.function} returned NaN")
        return Score(value)
