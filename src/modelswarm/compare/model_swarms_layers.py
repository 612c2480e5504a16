"""model_swarms_layers: Model Swarms with one coefficient per expert per contiguous group of
decoder layers (`swarm.granularity: layers`), the composition mergekit-evolve and the
evolutionary model-merge paper (Akiba et al. 2024) search.

The config's swarm section as it is, but with granularity `layers` and LAYER_GROUPS groups
(at most the model's decoder layers), unless the config already searches by layers. It runs
as its own run directory (COMPARE_DIR/model_swarms_layers-seed<S>, resumable) on the
compare's pool, counted like model_swarms; the searches' budget stays model_swarms'. Its
starting particles are the global ones repeated in every group, so its first iteration
scores what model_swarms' does (under other journal keys: a row of n * K is another row)."""

from __future__ import annotations

from ..weights.layer_groups import n_layers
from .base import Context, Outcome, register
from .model_swarms import swarm_outcome

LAYER_GROUPS = 4


@register("model_swarms_layers", "swarm")
def run(ctx: Context) -> Outcome:
    """Model Swarms with coefficients per expert per layer group (4, at most the layers)."""
    swarm = ctx.prep.config.swarm
    groups = (swarm.layer_groups if swarm.granularity == "layers"
              else max(1, min(LAYER_GROUPS, n_layers(ctx.prep.bank.layout.keys))))
    outcome = swarm_outcome(ctx, "model_swarms_layers", granularity="layers", layer_groups=groups)
    outcome.info["layer_groups"] = groups
    return outcome
