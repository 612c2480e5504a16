"""Utilities: one module per kind, listed in registry.py (see base.py for what a kind is)."""

from .base import Score, Utility, UtilitySection
from .registry import KINDS, REGISTRY, UtilityConfig, make_utility, utility_config

__all__ = ["KINDS", "REGISTRY", "Score", "Utility", "UtilityConfig", "UtilitySection", "make_utility",
           "utility_config"]
