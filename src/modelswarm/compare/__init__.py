"""`modelswarm compare`: Model Swarms against the alternatives a user would pick, on one budget.

One module per method, each registering itself (base.register); runner.py counts the
evaluations, runs the seeds, keeps the journal and writes compare.json; table.py prints the
table and draws the best-so-far plot. Adding a method is adding a file here.
"""

import importlib
import pkgutil

from .base import METHODS, BudgetExceeded, Context, Method, Outcome, register

_NOT_METHODS = {"base", "runner", "table", "export"}
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in _NOT_METHODS:
        importlib.import_module(f"{__name__}.{_mod.name}")

# the order of the table: the swarm, then what needs no search, the merges, the searches
ORDER = ["model_swarms", "model_swarms_layers", "best_expert", "uniform_soup", "greedy_soup", "task_arithmetic",
         "ties", "dare_ties", "lorahub", "cma_es", "bo", "random_search"]
DEFAULT_METHODS = [m for m in ORDER if m in METHODS] + sorted(set(METHODS) - set(ORDER))

__all__ = ["METHODS", "DEFAULT_METHODS", "BudgetExceeded", "Context", "Method", "Outcome", "register"]
