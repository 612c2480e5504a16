"""The package as installed: every module imports, and outside a checkout the demo says where to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_outside_a_checkout_says_where_to_run_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "demo"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "checkout of the modelswarm repository" in lines[0]


def test_demo_below_a_checkout_names_its_root(tmp_path):
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "demo"], cwd=root / "experts",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().endswith(f"run it from {root}"), r.stderr


def test_every_module_imports():
    """Import errors against the installed libraries show up here, in modules no other test loads."""
    import importlib
    import pkgutil

    import modelswarm

    names = [m.name for m in pkgutil.walk_packages(modelswarm.__path__, "modelswarm.")]
    assert "modelswarm.demo.build" in names and "modelswarm.scoring.greedy" in names
    for name in names:
        importlib.import_module(name)
