"""The package as installed: every module imports, and outside a checkout the demo says where to run it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# PyPI's `modelswarm` is an unrelated project; this one is distributed as model-swarms
DISTRIBUTION = "model-swarms"


def test_the_distribution_name_is_ours_and_the_readme_installs_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"modelswarm": "modelswarm.cli:main"}  # the command keeps its name
    readme = (ROOT / "README.md").read_text()
    assert f"pip install {DISTRIBUTION}" in readme and "pip install modelswarm\n" not in readme


def test_the_version_is_the_packages_and_the_installed_distributions():
    import importlib.metadata

    import modelswarm

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == modelswarm.__version__
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return  # run from a checkout not installed under this name (PYTHONPATH=src)
    assert dist.version == modelswarm.__version__


def test_the_test_extra_carries_what_the_suite_imports():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {req.split(">")[0].split("=")[0].split("[")[0] for req in extras["test"]}
    assert {"pytest", "hypothesis", "nevergrad", "cma", "optuna"} <= names


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
    assert "modelswarm.demo.build" in names and "modelswarm.engine.greedy" in names
    for name in names:
        importlib.import_module(name)
