"""Utilities: one module per kind, each registering itself (see base.py)."""

import importlib
import pkgutil

from ..config import UtilityConfig
from ..errors import UserError
from .base import REGISTRY, Score, Utility

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")


def make_utility(config: UtilityConfig) -> Utility:
    cls = REGISTRY.get(config.kind)
    if cls is None:
        raise UserError("utility.kind", f"unknown utility '{config.kind}' (have: {', '.join(sorted(REGISTRY))})")
    return cls(config)


__all__ = ["REGISTRY", "Score", "Utility", "make_utility"]
