"""Load expert checkpoints, check they can be combined, and pack them into one bank.

An expert is a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)
or a full-weight model (an HF model directory with safetensors, or one .safetensors file).
The bank is an (n_experts, n_params) float32 matrix: row j is expert j flattened in a fixed
key order. Workers get it once through the Ray object store and compose rows from it.
Pickle checkpoints (.bin, .pt) are refused, never unpickled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from safetensors import safe_open

from ..errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# adapter_config.json fields that must agree for A and B matrices to be combined
LORA_MUST_MATCH = ("peft_type", "r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern",
                   "use_rslora", "use_dora", "fan_in_fan_out", "modules_to_save", "bias")


@dataclass(frozen=True)
class BankLayout:
    """Everything about the bank except the numbers: small, sent to every worker."""

    names: tuple[str, ...]
    kind: str  # "lora" | "full"
    keys: tuple[str, ...]  # tensor names as stored in the expert files
    shapes: tuple[tuple[int, ...], ...]
    adapter_config: Optional[dict[str, Any]]  # the shared LoRA config (lora only)

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """A flat parameter vector as named tensors (views)."""
        out, off = {}, 0
        for key, shape, size in zip(self.keys, self.shapes, self.sizes):
            out[key] = flat[off:off + size].reshape(shape)
            off += size
        return out


@dataclass(frozen=True)
class ExpertBank:
    layout: BankLayout
    matrix: np.ndarray  # (n_experts, n_params) float32
    sources: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.layout.names


# --- discovery ---------------------------------------------------------------------------

def expert_paths(spec: str | list[str]) -> list[Path]:
    """A list of expert paths, or a folder whose sub-folders (and .safetensors files) are experts."""
    if isinstance(spec, list):
        paths = [Path(p) for p in spec]
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise UserError(folder, "experts folder not found")
        paths = sorted(p for p in folder.iterdir()
                       if (p.is_dir() and not p.name.startswith(".")) or p.suffix == ".safetensors")
        if len(paths) < 2:
            raise UserError(folder, f"a swarm needs at least 2 experts, found {len(paths)}")
    for p in paths:
        if not p.exists():
            raise UserError(p, "expert not found")
    return paths


def _weight_files(path: Path) -> tuple[str, list[Path], Optional[dict]]:
    """(kind, safetensors files, adapter config) of one expert, refusing pickle formats."""
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise UserError(path, "pickle checkpoints are refused (never unpickled); convert to safetensors")
        if path.suffix != ".safetensors":
            raise UserError(path, "not a .safetensors file or an expert directory")
        return "full", [path], None
    if (path / ADAPTER_CONFIG).is_file():
        weights = path / ADAPTER_WEIGHTS
        if not weights.is_file():
            if (path / "adapter_model.bin").exists():
                raise UserError(path / "adapter_model.bin",
                                "pickle checkpoints are refused (never unpickled); save with safe_serialization")
            raise UserError(weights, "missing adapter weights")
        try:
            cfg = json.loads((path / ADAPTER_CONFIG).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(path / ADAPTER_CONFIG, f"not valid JSON ({exc})") from None
        if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
            raise UserError(path / ADAPTER_CONFIG, f"only LoRA adapters are supported, got peft_type={cfg.get('peft_type') if isinstance(cfg, dict) else cfg!r}")
        return "lora", [weights], cfg
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise UserError(index, f"not a valid safetensors index ({exc})") from None
        return "full", [path / s for s in shards], None
    if (path / "model.safetensors").is_file():
        return "full", [path / "model.safetensors"], None
    pickles = [p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise UserError(pickles[0], "pickle checkpoints are refused (never unpickled); convert to safetensors")
    raise UserError(path, "not an expert: no adapter_config.json + adapter_model.safetensors, "
                          "and no model.safetensors")


def read_header(file: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a safetensors file, with a clear error for a truncated or foreign file."""
    if not file.is_file():
        raise UserError(file, "file not found")
    try:
        with safe_open(str(file), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for a corrupt header
        raise UserError(file, f"not a valid safetensors file ({str(exc).splitlines()[0]})") from None


def _lora_key(key: str) -> bool:
    return ".lora_" in key


# --- loading -----------------------------------------------------------------------------

def read_layout(spec: str | list[str]) -> tuple[BankLayout, list[list[Path]], list[Path]]:
    """Check every expert from its config and tensor headers alone (no weights are read).

    Returns the shared layout, each expert's safetensors files, and the expert paths."""
    paths = expert_paths(spec)
    names = [p.stem if p.is_file() else p.name for p in paths]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise UserError(paths[names.index(dupes.pop())], "two experts share this name; rename one")

    infos = [_weight_files(p) for p in paths]
    kinds = {k for k, _, _ in infos}
    if len(kinds) > 1:
        raise UserError(paths[1], "cannot mix LoRA adapters and full-weight experts in one swarm")
    kind = kinds.pop()

    ref_cfg = infos[0][2]
    if kind == "lora":
        for path, (_, _, cfg) in zip(paths[1:], infos[1:]):
            for field in LORA_MUST_MATCH:
                a, b = _norm(ref_cfg.get(field)), _norm(cfg.get(field))
                if a != b:
                    raise UserError(path / ADAPTER_CONFIG,
                                    f"'{field}' is {cfg.get(field)!r} but {names[0]} has {ref_cfg.get(field)!r}")
            base_a, base_b = ref_cfg.get("base_model_name_or_path"), cfg.get("base_model_name_or_path")
            if base_a and base_b and Path(base_a).name != Path(base_b).name:
                raise UserError(path / ADAPTER_CONFIG,
                                f"trained on base '{base_b}' but {names[0]} on '{base_a}'")

    headers = []
    for _, files, _ in infos:
        shapes: dict[str, tuple[int, ...]] = {}
        for file in files:
            shapes.update(read_header(file))
        headers.append(shapes)
    ref = headers[0]
    if not ref:
        raise UserError(infos[0][1][0], "holds no tensors")
    if kind == "lora" and not any(_lora_key(k) for k in ref):
        raise UserError(infos[0][1][0], "an adapter file without lora_A/lora_B tensors")
    for path, (_, files, _), shapes in zip(paths[1:], infos[1:], headers[1:]):
        missing, extra = sorted(set(ref) - set(shapes)), sorted(set(shapes) - set(ref))
        if missing or extra:
            what = f"lacks {missing[0]}" if missing else f"has extra tensor {extra[0]}"
            raise UserError(files[0], f"{what} (keys differ from {names[0]}: different rank/targets/base?)")
        for key, shape in shapes.items():
            if shape != ref[key]:
                raise UserError(files[0], f"tensor {key} has shape {list(shape)} but {names[0]} has "
                                          f"{list(ref[key])} (different rank or base model?)")

    keys = tuple(sorted(ref))
    layout = BankLayout(names=tuple(names), kind=kind, keys=keys,
                        shapes=tuple(ref[k] for k in keys), adapter_config=ref_cfg)
    return layout, [files for _, files, _ in infos], paths


def load_bank(spec: str | list[str]) -> ExpertBank:
    """Read and check every expert, then pack them into the bank matrix."""
    layout, files_per_expert, paths = read_layout(spec)
    matrix = np.empty((len(paths), layout.n_params), dtype=np.float32)
    for row, files in enumerate(files_per_expert):
        _fill_row(matrix[row], layout, files)
        if not np.isfinite(matrix[row]).all():
            raise UserError(files[0], "holds NaN or infinite weights")
    return ExpertBank(layout=layout, matrix=matrix, sources=tuple(str(p) for p in paths))


def _fill_row(row: np.ndarray, layout: BankLayout, files: list[Path]) -> None:
    views = layout.split(row)
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    views[key][...] = f.get_tensor(key).float().numpy()
        except UserError:
            raise
        except Exception as exc:  # a header can be fine while the data is truncated
            raise UserError(file, f"cannot read tensor data ({str(exc).splitlines()[0]})") from None


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        return sorted(map(str, value))
    return value


def base_shapes(base: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a base model directory, from the safetensors headers only."""
    base = Path(base)
    if not (base / "config.json").is_file():
        raise UserError(base, "base model directory not found (needs config.json)")
    index = base / "model.safetensors.index.json"
    if index.is_file():
        files = [base / s for s in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    elif (base / "model.safetensors").is_file():
        files = [base / "model.safetensors"]
    else:
        if any(p.suffix in PICKLE_SUFFIXES for p in base.iterdir()):
            raise UserError(base, "base model has only pickle weights (refused); save it with safetensors")
        raise UserError(base, "base model directory has no model.safetensors")
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        shapes.update(read_header(f))
    return shapes


def check_against_base(layout: BankLayout, base_model: str | Path) -> None:
    """The experts must fit the configured base: LoRA targets exist with matching dims,
    full experts have the base's tensor names and shapes."""
    base = Path(base_model)
    shapes = base_shapes(base)
    where = layout.names[0]
    if layout.kind == "full":
        for key, shape in zip(layout.keys, layout.shapes):
            if key not in shapes:
                raise UserError(where, f"tensor {key} does not exist in base model {base}")
            if shapes[key] != shape:
                raise UserError(where, f"tensor {key} has shape {list(shape)} but the base has {list(shapes[key])}")
        return
    for key, shape in zip(layout.keys, layout.shapes):
        if not _lora_key(key):
            # a modules_to_save copy (x.weight) or a trained bias (x.base_layer.bias): combined
            # like every other tensor, as the official lora_merge does, so it must fit the base
            name = key.removeprefix("base_model.model.").replace(".base_layer.", ".")
            if name not in shapes and name.endswith("lm_head.weight"):  # tied to the input embeddings
                name = next((k for k in shapes if k.endswith("embed_tokens.weight")), name)
            if shapes.get(name) != shape:
                what = "does not exist" if name not in shapes else f"has shape {list(shapes[name])}, not {list(shape)},"
                raise UserError(where, f"adapter tensor {key}: {name} {what} in base model {base}")
            continue
        if ".lora_A." not in key and ".lora_B." not in key:  # other LoRA tensors (embeddings)
            continue
        module = key.split(".lora_")[0].removeprefix("base_model.model.")
        target = shapes.get(module + ".weight")
        if target is None:
            raise UserError(where, f"LoRA target {module} does not exist in base model {base}")
        out_f, in_f = target[0], target[-1]
        if ".lora_A." in key and shape[-1] != in_f or ".lora_B." in key and shape[0] != out_f:
            raise UserError(where, f"LoRA tensor {key} {list(shape)} does not fit base weight "
                                   f"{module} {list(target)}: a different base model?")
