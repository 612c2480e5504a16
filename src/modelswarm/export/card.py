"""What every export carries besides its weights: the run's provenance (modelswarm.json) and a
model card (README.md) in the Hugging Face format, so that a directory copied to another
machine or uploaded to the hub says what it was composed from, how it scored, in which dtype
those scores hold, and how to load it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from ..io import atomic_write_json, atomic_write_text, dumps

CARD = "README.md"
PROVENANCE = "modelswarm.json"


def provenance(bank: Any, coeffs: Sequence[float], score: Optional[float], extra: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata (string -> string) describing how the weights were made (bank: an
    experts.ExpertBank)."""
    info = {
        "experts": list(bank.names),
        "coefficients": [float(c) for c in coeffs],
        "score": score,
        "kind": bank.layout.kind,
        **extra,
    }
    if len(coeffs) > len(bank.names):  # per layer group, group-major (layer_groups.py)
        info["layer_groups"] = len(coeffs) // len(bank.names)
    return {"format": "pt", "modelswarm": dumps(info)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _data_files(node: Any) -> list[str]:
    """Every existing file named by a `data` / `test_data` key, at any depth (multitask parts)."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("data", "test_data") and isinstance(v, str) and Path(v).is_file():
                out.append(v)
            else:
                out += _data_files(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            out += _data_files(v)
    return out


def scored_dtype(config) -> str:
    """The dtype the run's workers scored in (`auto` resolved on the device they would pick here)."""
    import torch

    from ..engine.models import resolve_dtype

    w = config.workers
    gpu = w.device == "cuda" or (w.device == "auto" and w.num_gpus > 0 and torch.cuda.is_available())
    return resolve_dtype(w.dtype, torch.device("cuda" if gpu else "cpu"))


def run_provenance(config) -> dict[str, Any]:
    """The keys modelswarm.json adds for a config: versions, dtype, seed, data checksums."""
    import peft
    import torch
    import transformers

    from .. import __version__

    data = {f: sha256_file(Path(f)) for f in dict.fromkeys(_data_files(config.utility.model_dump()))}
    return {
        "modelswarm_version": __version__,
        "base_model": config.base_model,
        "base_model_id": getattr(config, "base_model_id", None),
        "dtype": scored_dtype(config),
        "seed": config.seed,
        "utility": config.utility.kind,
        "data_sha256": data,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }


def _front_matter(info: dict[str, Any], adapter: bool) -> dict[str, Any]:
    fm: dict[str, Any] = {}
    if info.get("base_model_id"):
        fm["base_model"] = info["base_model_id"]
    if adapter:
        fm["library_name"] = "peft"
    else:
        fm["library_name"] = "transformers"
    fm["tags"] = ["modelswarm", "model-swarms", "merge"] + (["lora"] if info.get("kind") == "lora" else [])
    if info.get("datasets"):
        fm["datasets"] = list(info["datasets"])
    return fm


def _recipe(info: dict[str, Any]) -> list[str]:
    if info.get("merge") is not None:
        merge = dict(info["merge"])
        method = merge.pop("method", None) or info.get("method", "merge")
        lines = [f"A delta-space merge of {len(info.get('experts', []))} experts: **{method}**.", "",
                 "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {json.dumps(v)} |" for k, v in sorted(merge.items())]
        lines += ["", "Experts: " + ", ".join(f"`{e}`" for e in info.get("experts", []))]
        return lines
    lines = ["A weighted sum of the experts' weights (coefficients found by "
             + (f"`{info['method']}`" if info.get("method") else "a Model Swarms search") + "):", "",
             "| expert | coefficient |", "|---|---:|"]
    lines += [f"| `{e}` | {c:.6f} |" for e, c in zip(info.get("experts", []), info.get("coefficients", []))]
    if info.get("merged"):
        lines += ["", "The adapter is merged into the base model's weights (`modelswarm export --merged`)."]
    return lines


def _scores(info: dict[str, Any]) -> list[str]:
    scores = {"validation": info.get("score", info.get("val")), "test": info.get("test")}
    scores = {k: v for k, v in scores.items() if v is not None}
    if not scores:
        return ["No scores recorded."]
    dtype = info.get("dtype") or "the run's dtype"
    lines = [f"| split | {info.get('utility', 'score')} |", "|---|---:|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in scores.items()]
    lines += ["", f"Measured in **{dtype}**, as the search scored. Another dtype scores differently "
              "(float rounding moves greedy answers); `modelswarm verify RUN_DIR --dtype float32` "
              "re-scores in another dtype and reports the difference."]
    if info.get("merged"):
        lines += ["These are the adapter's scores; merging rounds the weights differently "
                  "(`modelswarm verify RUN_DIR --merged` re-scores this model)."]
    return lines


def _load(out_dir: Path, info: dict[str, Any], adapter: bool) -> list[str]:
    where = str(out_dir)
    dtype = info.get("dtype") or "float32"
    tok_from = (info.get("base_model_id") or info.get("base_model") or where) if adapter else where
    lines = ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
             f'model = AutoModelForCausalLM.from_pretrained("{where}", dtype="{dtype}")'
             + ("  # needs peft installed" if adapter else ""),
             f'tokenizer = AutoTokenizer.from_pretrained("{tok_from}")', "```"]
    if adapter and not info.get("base_model_id"):
        lines += ["", "adapter_config.json names the base model by this machine's path; set "
                  "`base_model_id` in the config to name its hub id instead."]
    return lines


def render_card(out_dir: Path, info: dict[str, Any], adapter: bool) -> str:
    title = info.get("run") or info.get("compare") or "modelswarm export"
    what = (f"{info['method']}, seed {info['seed']}" if info.get("method") else f"rank {info.get('rank', 1)}")
    body = [f"# {title}: {what}", "",
            f"Composed from expert {'LoRA adapters' if info.get('kind') == 'lora' else 'models'} of "
            f"`{info.get('base_model_id') or info.get('base_model', 'the base model')}` by "
            f"[modelswarm](https://arxiv.org/abs/2410.11163) {info.get('modelswarm_version', '')}".rstrip() + ".", "",
            "## Recipe", "", *_recipe(info), "",
            "## Scores", "", *_scores(info), "",
            "## Load", "", *_load(out_dir, info, adapter), "",
            "## Provenance", "",
            f"Seed {info.get('seed', '?')}; torch, transformers, peft: "
            + ", ".join(f"{v}" for v in (info.get("versions") or {}).values()) + ".", ""]
    body += [f"- `{f}`: sha256 `{h}`" for f, h in (info.get("data_sha256") or {}).items()]
    body += ["", f"Everything above, machine-readable: `{PROVENANCE}`."]
    front = yaml.safe_dump(_front_matter(info, adapter), sort_keys=False)
    return f"---\n{front}---\n\n" + "\n".join(body) + "\n"


def write_card(out_dir: Path, info: dict[str, Any], final_dir: Optional[Path] = None) -> Path:
    """README.md in out_dir, from the export's provenance (its modelswarm.json content).
    final_dir: where the directory will live (out_dir may be a temporary one being filled)."""
    out_dir = Path(out_dir)
    adapter = (out_dir / "adapter_config.json").is_file()
    atomic_write_text(out_dir / CARD, render_card(Path(final_dir or out_dir), info, adapter))
    return out_dir / CARD


def recorded_scores(summary_file: Path, coeffs) -> dict[str, float]:
    """The test score a finished run recorded for these coefficients (its global best), so that
    re-exporting best/ keeps it in the card."""
    if not Path(summary_file).is_file():
        return {}
    summary = json.loads(Path(summary_file).read_text())
    test = summary.get("baselines", {}).get("test", {}).get("global best")
    same = [float(c) for c in coeffs] == [float(c) for c in summary.get("best", {}).get("coefficients", [])]
    return {"test": test} if same and test is not None else {}


def add_scores(out_dir: Path, **scores: Optional[float]) -> None:
    """Scores known only after the export (the test split at the end of a run): into
    modelswarm.json and the card."""
    out_dir = Path(out_dir)
    info = json.loads((out_dir / PROVENANCE).read_text())
    info.update({k: v for k, v in scores.items() if v is not None})
    atomic_write_json(out_dir / PROVENANCE, info)
    write_card(out_dir, info)
