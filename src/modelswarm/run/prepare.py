"""Before a run writes anything: every input checked once, in one pass, and gathered into Prepared.

    the utility's own checks (side models, templates) -> its validation and test examples
    -> the expert bank, against the base model -> every prompt fits the base model's context
    -> the swarm's layer groups and size fit the experts

The run and every command after it read a Prepared; nothing downstream loads or checks
these inputs again.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..config import Config
from .context import check_prompts_fit
from ..errors import UserError
from ..weights.experts import ExpertBank, check_against_base, load_bank
from ..weights.layer_groups import n_layers
from ..search.start import coefficient_groups
from ..objectives import make_utility
from ..objectives.python_fn import sys_paths_for


@dataclass
class Prepared:
    """Everything a run needs, validated; nothing has been written yet."""

    config: Config
    bank: ExpertBank
    splits: dict[str, list[dict[str, Any]]]
    config_path: Optional[Path] = None
    # where a python utility's module is looked for, here and in every worker
    sys_paths: list[str] = field(default_factory=list)


def prepare(config: Config, config_path: Optional[Path] = None) -> Prepared:
    paths = sys_paths_for(config_path)
    for p in paths:  # python utilities may live next to the config
        if p not in sys.path:
            sys.path.insert(0, p)
    utility = make_utility(config.utility)
    try:  # side models (reward model, judge), templates: before any worker starts
        utility.check()
    except UserError as exc:  # name the config file too, as the config's own errors do
        if config_path is None or not exc.where.startswith("utility."):
            raise
        raise UserError(config_path, f"key '{exc.where}': {exc.problem}") from None
    splits = {s: ex for s in ("val", "test") if (ex := utility.load_split(s)) is not None}
    bank = load_bank(config.experts)
    check_against_base(bank.layout, config.base_model)
    check_prompts_fit(config.base_model, config.utility, splits)
    groups, layers = coefficient_groups(config.swarm), n_layers(bank.layout.keys)
    if groups > max(layers, 1):
        raise UserError(config_path or "<config>", f"key 'swarm.layer_groups' is {groups}, more than the {layers} "
                                                   "decoder layers the experts' tensors cover")
    size = config.swarm.size
    if size is not None and size < len(bank.names):
        raise UserError(config_path or "<config>", f"key 'swarm.size' is {size}, fewer than the "
                                                   f"{len(bank.names)} experts: every expert starts as a particle")
    return Prepared(config=config, bank=bank, splits=splits, config_path=config_path, sys_paths=paths)
