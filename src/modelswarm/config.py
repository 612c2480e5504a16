"""Run configuration: frozen pydantic models, validated once when the YAML is read.

Every key is declared with its type, range and a description (the README's config table
is generated from these: `python -m modelswarm.config_doc`). The `utility:` section is
one of the kinds' models (objectives/registry.py), each holding the common keys
(objectives/base.py), the engine's (sections.py) and its own, all flat under `utility:`.
Paths are made absolute against the working directory at load time and stored that way
in the run directory's resolved config.yaml. Errors are pydantic's, turned into one line
naming the file and the key (config_errors.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .config_errors import user_error
from .errors import UserError
from .sections import Section
from .objectives.registry import UtilityConfig


def _in_unit(lo_open: bool, hi_open: bool) -> Callable[[float], float]:
    def check(v: float) -> float:
        if (v <= 0 if lo_open else v < 0) or (v >= 1 if hi_open else v > 1):
            raise ValueError(f"must be in {'(' if lo_open else '['}0, 1{')' if hi_open else ']'}")
        return v

    return check


# The official algorithm's values (search.py's argparse defaults; restart_patience from the
# search_*.sh scripts, which all pass 0.67) for the keys whose defaults differ from it; each
# difference is in the README's differences table, key by key in "The paper preset".
PAPER: dict[str, Any] = {"anchors": [], "max_iterations": 200,
                         "phi_v": 0.4, "phi_p": 0.3, "phi_g": 0.3, "phi_w": 0.3}
# official --restart_patience of the scripts: a fraction of patience (see paper_restart_patience)
PAPER_RESTART_FRACTION = 0.67


def paper_restart_patience(patience: int) -> int:
    """The official restart test `len(history) - first_best_index >= 0.67 * patience` on
    whole numbers: the smallest integer at or above the product (7 for patience 10)."""
    return math.ceil(PAPER_RESTART_FRACTION * patience)


class SwarmParams(Section):
    """Hyperparameters of the search. Defaults follow the paper (arXiv:2410.11163) and the
    official code (github BunsenFeng/model_swarm, search.py and its search_*.sh scripts),
    except where PAPER lists the official value; `preset: paper` restores those."""

    preset: Literal["default", "paper"] = Field(
        "default", description="`paper`: the official algorithm, its value for every key whose default "
        "differs: " + ", ".join(f"{k} {v}" for k, v in PAPER.items()) + ", restart_patience ⌈0.67 × patience⌉ "
        "(7); keys set next to it still win")
    size: Optional[int] = Field(None, description="number of particles N; unset means 20 (the paper's N: "
                                "the n experts, the anchors, then crossover children), or n if larger; fewer "
                                "than n is refused")
    phi_v: float = Field(0.3, ge=0, description="inertia weight")
    phi_p: float = Field(0.3, ge=0, description="cognitive weight: pull to the personal best")
    phi_g: float = Field(0.5, ge=0, description="social weight: pull to the global best")
    phi_w: float = Field(0.05, ge=0, description="repel weight: push from the all-time global worst")
    step_length: float = Field(1.0, gt=0, description="λ, the initial step")
    step_decay: float = Field(0.95, description="λ ← max(λ·decay, step_min) each iteration; in (0, 1]")
    step_min: float = Field(0.1, ge=0, description="the floor of λ")
    velocity_init: Literal["random", "zero", "best"] = Field(
        "random", description="`random` (x_j − x_i for a random particle j), `zero`, or `best` (g − x_i)")
    anchors: list[Literal["uniform", "base"]] = Field(
        ["base"], description="extra starting particles after the experts, in place of crossover children: "
        "`base` (all coefficients 0, the base model; LoRA banks of A and B only, skipped for full fine-tunes) "
        "and `uniform` (the uniform soup). The paper starts from the experts and crossover children only "
        "(`[]`); the base point lets the swarm scale the experts' deltas (README: differences). It changes more "
        "than one particle: the base row is a crossover parent too, and each child with it as an ancestor is a "
        "scaled mix of experts (3 experts, 8 particles: 4 of the 8 starting rows do not sum to 1); `run` prints "
        "how many at the start")
    crossover_max_weight: float = Field(2.0, gt=0, description="crossover children use w ~ U[0, this)")
    restart_patience: int = Field(
        5, ge=1, description="at the start of each iteration a particle whose personal best is this many or "
        "more entries old in its own score history (one entry per iteration, the first for the initial swarm) "
        "goes back to its personal best with v = 0; checked every iteration, so it restarts each iteration "
        "until it improves. It is the official `restart_patience × patience` rounded up: 0.5 × 10 (the argparse "
        "default) here, 0.67 × 10 → 7 (the shipped scripts) under `preset: paper`")
    restart: bool = Field(True, description="`false` turns restarts off (official `--restart_stray_particles 0`)")
    on_collapse: Literal["restart", "reseed"] = Field(
        "restart", description="what the restart rule does while the swarm is collapsed (every particle's "
        "current score equal: all on one plateau): `restart` (official) sends a stray particle back to its "
        "personal best, on that plateau; `reseed` puts it at a fresh crossover child w·a + (1 − w)·b of two "
        "starting particles, v = 0, off the plateau (README: \"Ties on a plateau\")")
    patience: int = Field(10, ge=1, description="stop when the last `patience` entries of the global-best "
                          "history (one per iteration, the first for the initial swarm) are equal")
    max_iterations: int = Field(50, ge=0, description="hard stop")
    top_k: int = Field(3, ge=1, description="the global best and the next distinct personal bests kept in "
                       "summary.json (`export --rank k`)")
    weight_randomness: bool = Field(True, description="`false`: every r is 1, deterministic updates "
                                    "(official `--weight_randomess 0`)")
    drop_iteration: float = Field(0.0, description="probability that an iteration is not evaluated (official "
                                  "dropK); the particles move and keep their previous utility; in [0, 1)")
    drop_particle: float = Field(0.0, description="probability that one particle's evaluation is skipped "
                                 "(official dropN), likewise; in [0, 1)")
    ensemble_top_k: int = Field(10, ge=1, description="personal bests in the end-of-run majority-vote ensemble")
    granularity: Literal["global", "layers"] = Field(
        "global", description="`global`: one coefficient per expert; `layers`: one per expert per contiguous "
        "group of decoder layers (`layer_groups` of them; tensors outside the layers take the groups' mean)")
    layer_groups: int = Field(1, ge=1, description="with `granularity: layers`, the number of contiguous "
                              "layer groups; at most the model's decoder layers")

    _decay = field_validator("step_decay")(_in_unit(lo_open=True, hi_open=False))
    _drops = field_validator("drop_iteration", "drop_particle")(_in_unit(lo_open=False, hi_open=True))

    @field_validator("size")
    @classmethod
    def _size(cls, v: Optional[int]) -> Optional[int]:
        if v is not None and v < 2:
            raise ValueError("must be at least 2")
        return v

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "paper":
            patience = data.get("patience", cls.model_fields["patience"].default)
            restart = paper_restart_patience(patience) if isinstance(patience, int) else None
            return {**PAPER, **({"restart_patience": restart} if restart else {}), **data}
        return data

    @model_validator(mode="after")
    def _some_phi(self) -> "SwarmParams":
        if self.phi_v + self.phi_p + self.phi_g + self.phi_w <= 0:
            raise ValueError("the four phi weights must not all be 0")
        return self


class WorkersConfig(Section):
    """The Ray evaluator pool."""

    count: int = Field(2, ge=1, description="Ray evaluator actors")
    num_cpus: float = Field(1.0, gt=0, description="CPUs per actor; torch threads = num_cpus")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per actor")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` (cuda if the actor has a GPU), "
                                                   "`cpu`, `cuda`")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        "float32", description="weights and activations; `auto` is bfloat16 where the device computes it "
        "natively (a CPU with AVX512-BF16 or AMX, a GPU of compute capability 8.0 or newer), else float32: "
        "`modelswarm plan` says which, and times both")
    eval_timeout_s: float = Field(1800.0, gt=0, description="one evaluation; past it the actor is replaced "
                                  "and the job re-dispatched")
    max_retries: int = Field(2, ge=0, description="failed attempts before an evaluation counts as failed "
                             "(reason in the table and journal): the particle is treated as not evaluated")


class Config(Section):
    """A run: what to compose, how to score it, how to search, where to run."""

    name: str = Field("swarm", description="run name; the run directory is `runs_dir/name`")
    runs_dir: str = Field("runs", description="parent of run directories")
    seed: int = Field(0, description="the whole search is a function of the seed")
    base_model: str = Field(description="HF model directory (safetensors) the experts were trained from")
    base_model_id: Optional[str] = Field(None, description="the base model's Hugging Face hub id (e.g. "
                                         "HuggingFaceTB/SmolLM2-135M-Instruct): exports name it (adapter_config.json, "
                                         "README.md) instead of this machine's path")
    experts: Union[str, list[str]] = Field(description="a folder whose sub-folders are experts, or a list of "
                                           "expert paths")
    utility: UtilityConfig = Field(description="what a particle is scored on")
    swarm: SwarmParams = Field(default_factory=SwarmParams, description="the search")
    workers: WorkersConfig = Field(default_factory=WorkersConfig, description="the evaluator pool")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError("must be a plain directory name")
        return v

    @field_validator("experts")
    @classmethod
    def _two_experts(cls, v: Union[str, list[str]]) -> Union[str, list[str]]:
        if isinstance(v, list) and len(v) < 2:
            raise ValueError("a swarm needs at least 2 experts")
        return v

    @model_validator(mode="after")
    def _paper_breaks_no_ties(self) -> "Config":
        if self.swarm.preset == "paper" and self.utility.tie_break:
            raise ValueError("utility.tie_break: swarm.preset 'paper' is the official algorithm, which orders "
                             "equal scores by particle index only; set tie_break: false")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


# --- loading ----------------------------------------------------------------------------

_PATH_KEYS = {("base_model",), ("experts",), ("runs_dir",), ("utility", "data"), ("utility", "test_data")}

# Keys that no longer do anything: still accepted (so that the config.yaml of an older run
# directory resumes), with a one-line warning where the reason is worth reading.
RETIRED: dict[str, Optional[str]] = {
    "utility.early_exit_chunk": None,  # early exit checks its bound at every mark
    "composition": "one coefficient per expert, LoRA A and B combined separately (the paper's "
                   "composition) is the only one; the section is ignored",
}
# utility.batch_size meant three things; an older config sets all three
_SPLIT_KEYS = {"utility.batch_size": ("batch_sequences", "decode_rows", "head_rows")}


def _drop_retired(raw: dict[str, Any], where: str, warn: Callable[[str], None]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, why in RETIRED.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            del node[last]
            if why:
                warn(f"{where}: key '{key}' is retired: {why}")
    for key, names in _SPLIT_KEYS.items():
        section, last = key.split(".")
        node = out.get(section)
        if isinstance(node, dict) and last in node:
            value = node.pop(last)
            for name in names:
                node.setdefault(name, value)
            warn(f"{where}: key '{key}' is split into {', '.join(f'{section}.{n}' for n in names)}: "
                 f"all three set to {value!r}")
    return out


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


def _stderr(line: str) -> None:
    print(f"modelswarm: warning: {line}", file=sys.stderr)


def config_from_dict(raw: Any, where: str = "<config>", warn: Callable[[str], None] = _stderr) -> Config:
    if not isinstance(raw, dict):
        raise UserError(where, "the config must be a YAML mapping")
    raw = _absolutise(_drop_retired(raw, where, warn))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise user_error(exc, Config, raw, where) from None


def load_config(path: str | Path, overrides: Optional[dict[str, Any]] = None,
                warn: Callable[[str], None] = _stderr) -> Config:
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
    return config_from_dict(raw, str(path), warn)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
