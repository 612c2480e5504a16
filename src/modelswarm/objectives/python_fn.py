"""python: a user function `module:function` called as f(model, tokenizer, examples) -> float.

Examples are the JSONL objects as they are. The module is imported in each worker, so it
must be importable there (on a cluster: installed, or shipped with the Ray runtime_env).
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator

from ..errors import UserError
from .base import Score, Utility, UtilitySection, kind_key
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


class PythonConfig(UtilitySection):
    kind: Literal["python"] = kind_key("python")
    function: str = Field(description="`module:function`, called as f(model, tokenizer, examples) -> "
                          "float; the module is looked for in the working directory and next to the config")

    @field_validator("function")
    @classmethod
    def _spec(cls, v: str) -> str:
        if v.count(":") != 1 or not all(v.split(":")):
            raise ValueError("must be 'module:function'")
        return v


class PythonFunction(Utility):
    Config = PythonConfig

    def load(self, path):
        resolve(self.config.function)  # fail early, before any worker starts
        return [obj for _, obj in read_jsonl(path)]

    def score_with(self, engine, examples, bound=None) -> Score:  # a user's function: no early exit
        value = resolve(self.config.function)(engine.model, engine.tokenizer, examples)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(self.config.function, f"returned {value!r}, not a number") from None
        if math.isnan(value):
            raise ValueError(f"{self.config.function} returned NaN")
        return Score(value)
