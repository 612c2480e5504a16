"""Run configuration: frozen dataclasses, validated once when the YAML is read.

Every key is checked here (unknown keys, types, ranges), so the rest of the code can trust
a Config. Paths are made absolute against the working directory at load time and stored
that way in the run directory's resolved config.yaml.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import UserError


@dataclass(frozen=True)
class SwarmParams:
    """Hyperparameters of the search. Defaults follow the paper (arXiv:2410.11163) and the
    official code (github BunsenFeng/model_swarm, search.py and its search_*.sh scripts)."""

    size: Optional[int] = None  # particles N; None means 20 (the paper's N), or the expert count if larger
    phi_v: float = 0.3  # inertia
    phi_p: float = 0.3  # cognitive: pull to the personal best
    phi_g: float = 0.5  # social: pull to the global best
    phi_w: float = 0.05  # repel: push from the all-time global worst
    step_length: float = 1.0  # lambda
    step_decay: float = 0.95
    step_min: float = 0.1
    velocity_init: Literal["random", "zero", "best"] = "random"
    crossover_max_weight: float = 2.0  # w ~ U[0, max) for crossover children
    # restart a particle when its personal best is this many entries old in its own score
    # history (official: restart_patience x patience, 0.5 x 10)
    restart_patience: int = 5
    restart: bool = True  # official --restart_stray_particles
    patience: int = 10  # stop when the last `patience` global-best entries are equal
    max_iterations: int = 50
    top_k: int = 3
    weight_randomness: bool = True  # official --weight_randomess: False sets every r to 1
    drop_iteration: float = 0.0  # official dropK: probability an iteration is not evaluated
    drop_particle: float = 0.0  # official dropN: probability a particle's evaluation is skipped
    ensemble_top_k: int = 10  # personal bests in the end-of-run majority-vote ensemble

    def check(self) -> list[tuple[str, str]]:
        bad = []
        if self.size is not None and self.size < 2:
            bad.append(("size", "must be at least 2"))
        for name in ("phi_v", "phi_p", "phi_g", "phi_w"):
            if getattr(self, name) < 0:
                bad.append((name, "must be >= 0"))
        if self.phi_v + self.phi_p + self.phi_g + self.phi_w <= 0:
            bad.append(("phi_v", "the four phi weights must not all be 0"))
        if self.step_length <= 0:
            bad.append(("step_length", "must be > 0"))
        if not 0 < self.step_decay <= 1:
            bad.append(("step_decay", "must be in (0, 1]"))
        if self.step_min < 0:
            bad.append(("step_min", "must be >= 0"))
        if self.crossover_max_weight <= 0:
            bad.append(("crossover_max_weight", "must be > 0"))
        for name in ("restart_patience", "patience", "max_iterations", "top_k", "ensemble_top_k"):
            if getattr(self, name) < (0 if name == "max_iterations" else 1):
                bad.append((name, "is out of range"))
        for name in ("drop_iteration", "drop_particle"):
            if not 0 <= getattr(self, name) < 1:
                bad.append((name, "must be in [0, 1)"))
        return bad


@dataclass(frozen=True)
class UtilityConfig:
    """What a particle is scored on. `data` is the validation JSONL the search optimises."""

    kind: str  # a registered utility: multiple_choice, exact_match, python, ... (utilities/)
    data: str
    test_data: Optional[str] = None  # held-out split, scored at the end and by baselines
    function: Optional[str] = None  # python: "module:function"
    max_examples: Optional[int] = None  # use the first N validation examples
    batch_size: int = 16
    batch_tokens: Optional[int] = None  # cap on padded prompt tokens per forward (activation memory)
    max_new_tokens: int = 16  # exact_match generation budget
    chat_template: Literal["auto", "on", "off"] = "auto"
    system_prompt: Optional[str] = None
    prefix_sharing: bool = True  # run shared prompt prefixes once (tree attention); same marks
    # stop scoring a particle once it can no longer beat its personal best (see README)
    early_exit: bool = False

    def check(self) -> list[tuple[str, str]]:
        bad = []
        if self.kind == "python" and (not self.function or ":" not in self.function):
            bad.append(("function", "python utilities need function: 'module:function'"))
        if self.max_examples is not None and self.max_examples < 1:
            bad.append(("max_examples", "must be >= 1"))
        if self.batch_size < 1:
            bad.append(("batch_size", "must be >= 1"))
        if self.batch_tokens is not None and self.batch_tokens < 1:
            bad.append(("batch_tokens", "must be >= 1"))
        if self.max_new_tokens < 1:
            bad.append(("max_new_tokens", "must be >= 1"))
        return bad


@dataclass(frozen=True)
class CompositionConfig:
    """How coefficients become weights. `ab` combines LoRA A and B separately (the paper)."""

    granularity: Literal["global"] = "global"
    lora_mode: Literal["ab"] = "ab"

    def check(self) -> list[tuple[str, str]]:
        return []


@dataclass(frozen=True)
class WorkersConfig:
    """The Ray evaluator pool."""

    count: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    eval_timeout_s: float = 1800.0  # one evaluation; past it the actor is restarted
    max_retries: int = 2  # failed attempts of one evaluation before it counts as not evaluated

    def check(self) -> list[tuple[str, str]]:
        bad = []
        if self.count < 1:
            bad.append(("count", "must be >= 1"))
        if self.num_cpus <= 0:
            bad.append(("num_cpus", "must be > 0"))
        if self.num_gpus < 0:
            bad.append(("num_gpus", "must be >= 0"))
        if self.eval_timeout_s <= 0:
            bad.append(("eval_timeout_s", "must be > 0"))
        if self.max_retries < 0:
            bad.append(("max_retries", "must be >= 0"))
        return bad


@dataclass(frozen=True)
class Config:
    base_model: str  # HF model directory
    experts: Union[str, list[str]]  # a folder of expert dirs, or a list of dirs/files
    utility: UtilityConfig
    name: str = "swarm"  # run name: the run directory is runs_dir/name
    runs_dir: str = "runs"
    seed: int = 0
    swarm: SwarmParams = field(default_factory=SwarmParams)
    composition: CompositionConfig = field(default_factory=CompositionConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)

    def check(self) -> list[tuple[str, str]]:
        bad = []
        if not self.name or "/" in self.name or self.name.startswith("."):
            bad.append(("name", "must be a plain directory name"))
        if isinstance(self.experts, list) and len(self.experts) < 2:
            bad.append(("experts", "a swarm needs at least 2 experts"))
        return bad

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


# --- validation -------------------------------------------------------------------------

_PATH_KEYS = {("base_model",), ("experts",), ("runs_dir",), ("utility", "data"), ("utility", "test_data")}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Return value as type tp, or raise a UserError naming the key."""
    origin = typing.get_origin(tp)
    fail = UserError(where, f"key '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except UserError:
                continue
        raise fail
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise fail
    if origin is list:
        if not isinstance(value, list):
            raise fail
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail
    raise TypeError(f"unsupported config type {tp}")


# keys of earlier versions that no longer do anything: still accepted, so that the
# config.yaml of an older run directory resumes
RETIRED = {"utility.early_exit_chunk"}  # early exit now checks its bound at every mark


def _build(cls: type, data: Any, prefix: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(where, f"key '{prefix.rstrip('.') or '<top>'}' must be a mapping, got {data!r}")
    data = {k: v for k, v in data.items() if f"{prefix}{k}" not in RETIRED}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise UserError(where, f"unknown key '{prefix}{key}'{hint}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(where, f"missing required key '{prefix}{name}'")
    obj = cls(**kwargs)
    for key, problem in obj.check():
        raise UserError(where, f"key '{prefix}{key}' {problem}")
    return obj


def _absolutise(raw: dict[str, Any]) -> dict[str, Any]:
    """Make relative paths absolute (against the working directory) so a run is relocatable."""

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return str(Path(value).expanduser().resolve())
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for path in _PATH_KEYS:
        node = out
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) is not None:
            node[path[-1]] = fix(node[path[-1]])
    return out


def config_from_dict(raw: Any, where: str = "<config>") -> Config:
    if not isinstance(raw, dict):
        raise UserError(where, "the config must be a YAML mapping")
    return _build(Config, _absolutise(raw), "", where)


def load_config(path: str | Path, overrides: Optional[dict[str, Any]] = None) -> Config:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        raise UserError(path, f"{line}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raise UserError(path, "the config file is empty")
    if isinstance(raw, dict) and overrides:
        raw = _merge(raw, overrides)
    return config_from_dict(raw, str(path))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


# --- per-kind utility parameters (stand-in until config.py moves to pydantic on main) -------

from pydantic import BaseModel, ConfigDict  # noqa: E402


class UtilityParams(BaseModel):
    """The parameters a utility kind declares (its nested `Params` class)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
