"""Utilities: one module per kind, each registering itself (see base.py)."""

import importlib
import pkgutil

from ..config import UtilityConfig
from .base import REGISTRY, Score, Utility

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")


def make_utility(config: UtilityConfig) -> Utility:
    return REGISTRY[config.kind](config)  # the config checked the kind when it was read


__all__ = ["REGISTRY", "Score", "Utility", "make_utility"]
