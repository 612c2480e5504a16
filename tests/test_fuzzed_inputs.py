"""Broken input reaches the user as one line naming the file and the problem, exit code 2,
and no run directory: checked through the command line, one case per way a file can be bad."""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import write_config
from modelswarm.cli.app import main

RAY_WORKER_LINE = re.compile(r"^(\x1b\[\d+m)?\((\w+ )?pid=\d+")


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["modelswarm", *args]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = old
    return done.value.code, capsys.readouterr().err


def expect_refused(cfg: Path, runs: Path, capsys, names: str | Path, says: str) -> str:
    code, err = run_cli(["run", str(cfg), "--no-live"], capsys)
    # Ray forwards its worker processes' own logs to the driver's stderr, each line prefixed
    # "(pid=...)" (a worker killed at shutdown may log an abort there): those are not ours
    lines = [l for l in err.strip().splitlines() if not RAY_WORKER_LINE.match(l)]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("modelswarm: error: "), err
    assert str(names) in lines[0], lines[0]
    assert says in lines[0], lines[0]
    assert not (runs / "t").exists(), "a run directory was written for bad input"
    return lines[0]


@pytest.fixture
def experts(world, tmp_path) -> Path:
    dst = tmp_path / "experts"
    shutil.copytree(world["experts"], dst)
    return dst


def adapter_file(experts: Path, name: str = "up") -> Path:
    return experts / name / "adapter_model.safetensors"


def truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def corrupt(f: Path) -> None:
    data = bytearray(f.read_bytes())
    data[8:40] = b"\xff" * 32  # the header's JSON
    f.write_bytes(bytes(data))


def overclaim(f: Path) -> None:
    """A valid header whose offsets claim more bytes than the file holds."""
    data = f.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    key = next(k for k in header if k != "__metadata__")
    begin, end = header[key]["data_offsets"]
    header[key]["data_offsets"] = [begin, end + 10_000_000]
    raw = json.dumps(header).encode()
    f.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def edit_adapter_config(experts: Path, **changes) -> Path:
    f = experts / "up" / "adapter_config.json"
    cfg = json.loads(f.read_text())
    cfg.update(changes)
    f.write_text(json.dumps(cfg))
    return f


ADAPTER_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated adapter": (lambda e: (truncate(adapter_file(e)), adapter_file(e))[1], "safetensors"),
    "corrupted header": (lambda e: (corrupt(adapter_file(e)), adapter_file(e))[1], "safetensors"),
    "header claims more bytes than the file holds": (
        lambda e: (overclaim(adapter_file(e)), adapter_file(e))[1], "safetensors"),
    "different rank": (lambda e: edit_adapter_config(e, r=8), "'r' is 8"),
    "different alpha": (lambda e: edit_adapter_config(e, lora_alpha=99), "'lora_alpha' is 99"),
    "different target modules": (lambda e: edit_adapter_config(e, target_modules=["q_proj"]), "'target_modules'"),
}


@pytest.mark.parametrize("case", list(ADAPTER_CASES))
def test_a_broken_or_mismatched_adapter_is_one_line(case, world, experts, tmp_path, capsys):
    mutate, says = ADAPTER_CASES[case]
    names = mutate(experts)
    cfg = write_config(tmp_path / "c.yaml", {**world, "experts": experts}, tmp_path / "runs")
    expect_refused(cfg, tmp_path / "runs", capsys, names, says)


def test_experts_of_another_hidden_size_are_one_line(world, tmp_path, capsys):
    from modelswarm.tiny import make_base

    other = make_base(tmp_path / "wide_base", hidden=64)
    cfg = write_config(tmp_path / "c.yaml", {**world, "base": other}, tmp_path / "runs")
    expect_refused(cfg, tmp_path / "runs", capsys, "down", "does not fit base weight")


def test_full_experts_of_another_vocabulary_are_one_line(world, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    experts = tmp_path / "full"
    base = load_file(str(world["base"] / "model.safetensors"))
    for name, grow in (("a", 0), ("b", 7)):
        tensors = {k: v.clone() for k, v in base.items()}
        emb = next(k for k in tensors if k.endswith("embed_tokens.weight"))
        if grow:
            import torch

            tensors[emb] = torch.cat([tensors[emb], torch.zeros(grow, tensors[emb].shape[1])])
        (experts / name).mkdir(parents=True)
        save_file(tensors, str(experts / name / "model.safetensors"))
    cfg = write_config(tmp_path / "c.yaml", {**world, "experts": experts}, tmp_path / "runs")
    expect_refused(cfg, tmp_path / "runs", capsys, "model.safetensors", "embed_tokens.weight")


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((l if isinstance(l, bytes) else l.encode()) + b"\n" for l in lines))
    return path


EXACT_OK = json.dumps({"prompt": "3^", "answer": "4"})
MC_OK = json.dumps({"question": "3^", "choices": ["4", "5"], "answer": 0})

DATA_CASES: dict[str, tuple[str, list[str | bytes], str]] = {
    "empty answer": ("exact_match", [EXACT_OK, json.dumps({"prompt": "3^", "answer": ""})], "'answer' is empty"),
    "non-string answer": ("exact_match", [EXACT_OK, json.dumps({"prompt": "3^", "answer": [4]})], "'answer' must be"),
    "invalid UTF-8": ("exact_match", [EXACT_OK, b'{"prompt": "3\xff^", "answer": "4"}'], "not UTF-8"),
    "one choice": ("multiple_choice", [MC_OK, json.dumps({"question": "3^", "choices": ["4"], "answer": 0})],
                   "at least 2"),
    "prompt longer than the context": ("exact_match", [EXACT_OK, json.dumps({"prompt": "7^" * 400, "answer": "8"})],
                                       "context"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_a_bad_data_line_is_one_line_naming_it(case, world, tmp_path, capsys):
    kind, lines, says = DATA_CASES[case]
    data = write_lines(tmp_path / "val.jsonl", lines)
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                       utility={"kind": kind, "data": str(data), "test_data": None})
    where = f"{data}: example 2" if says == "context" else f"{data}:2"
    expect_refused(cfg, tmp_path / "runs", capsys, where, says)


def test_a_yaml_that_is_a_list_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- base_model: x\n- experts: y\n")
    expect_refused(cfg, tmp_path / "runs", capsys, cfg, "mapping")


PYTHON_UTILITIES = {
    "returns a string": ("def score(model, tokenizer, examples):\n    return 'high'\n", "my_util_1:score",
                         "returned 'high', not a number"),
    "raises": ("def score(model, tokenizer, examples):\n    raise RuntimeError('boom')\n", "val.jsonl",
               "RuntimeError: boom"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PYTHON_UTILITIES))
def test_a_python_utility_that_misbehaves_is_one_line(case, world, ray_session, tmp_path, capsys, monkeypatch):
    source, names, says = PYTHON_UTILITIES[case]
    module = f"my_util_{list(PYTHON_UTILITIES).index(case) + 1}"  # one name per case: imports are cached
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                       utility={"kind": "python", "function": f"{module}:score", "data": str(world["val"]),
                                "test_data": None}, workers={"count": 1, "max_retries": 0})
    expect_refused(cfg, tmp_path / "runs", capsys, names, says)
