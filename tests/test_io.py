"""Atomic writes give files and directories the mode open() and mkdir() would: the umask's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelswarm.io import atomic_write_dir, atomic_write_json, atomic_write_text, current_umask


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_process_umask(umask):
    assert current_umask() == umask


def test_atomic_file_has_the_mode_open_gives(tmp_path, umask):
    atomic_write_json(tmp_path / "state.json", {"a": 1})
    atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
    (tmp_path / "plain.txt").write_text("x")  # what open() gives under this umask
    assert mode(tmp_path / "state.json") == 0o666 & ~umask == mode(tmp_path / "plain.txt")
    assert mode(tmp_path / "config.yaml") == 0o666 & ~umask
    atomic_write_text(tmp_path / "config.yaml", "a: 2\n")  # rewriting keeps it so
    assert mode(tmp_path / "config.yaml") == 0o666 & ~umask


def test_atomic_dir_has_the_mode_mkdir_gives(tmp_path, umask):
    atomic_write_dir(tmp_path / "best", lambda tmp: (tmp / "adapter_model.safetensors").write_bytes(b"x"))
    (tmp_path / "plain").mkdir()
    assert mode(tmp_path / "best") == 0o777 & ~umask == mode(tmp_path / "plain")
    assert mode(tmp_path / "best" / "adapter_model.safetensors") == 0o666 & ~umask


def test_exported_adapter_is_readable_by_others(tmp_path, world):
    from modelswarm.weights.experts import load_bank
    from modelswarm.export.particle import export_particle

    old = os.umask(0o022)
    try:
        bank = load_bank(str(world["experts"]))
        out = export_particle(tmp_path / "best", bank, [1.0] + [0.0] * (len(bank.names) - 1), str(world["base"]))
    finally:
        os.umask(old)
    assert mode(out) == 0o755
    for f in out.iterdir():
        assert mode(f) == 0o644, f.name
