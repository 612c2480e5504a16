"""The utility kinds, in one explicit list, and the `utility:` section as their union.

Adding a kind: its module under objectives/ (a config model and a Utility, see base.py)
and one line in KINDS. `UtilityConfig` is the discriminated union of the kinds' config
models on `kind`: validating a section picks the kind's model, which holds the common
keys, the engine's and its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from .abstain_qa import AbstainQA
from .base import Utility
from .exact_match import ExactMatch
from .llm_judge import LLMJudge
from .lm_harness import LmEval
from .multiple_choice import MultipleChoice
from .multitask import Multitask
from .python_fn import PythonFunction
from .reward_model import RewardModel

KINDS: tuple[type[Utility], ...] = (
    AbstainQA,
    ExactMatch,
    LLMJudge,
    LmEval,
    MultipleChoice,
    Multitask,
    PythonFunction,
    RewardModel,
)

REGISTRY: dict[str, type[Utility]] = {u.Config.model_fields["kind"].default: u for u in KINDS}

UtilityConfig = Annotated[Union[tuple(u.Config for u in KINDS)], Field(discriminator="kind", title="utility")]

Multitask.Config.model_rebuild(_types_namespace={"UtilityConfig": UtilityConfig})
_SECTION: TypeAdapter = TypeAdapter(UtilityConfig)


def utility_config(raw: Any = None, /, **keys: Any) -> Any:
    """The kind's config model for a `utility:` mapping (or keyword arguments), validated."""
    return _SECTION.validate_python({**(raw or {}), **keys})


def make_utility(config: Any) -> Utility:
    """The utility of a validated section."""
    return REGISTRY[config.kind].build(config, make_utility)
