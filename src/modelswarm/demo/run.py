"""`modelswarm demo` / `make demo`: base model ready, experts present, then an ordinary run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from ..config import load_config
from ..errors import UserError
from .smollm import ensure_base

DEMO_CONFIG = Path("swarm_configs/demo.yaml")


def where_to_run() -> str:
    """Where `modelswarm demo` can run: the checkout above the working directory, if any."""
    for d in (Path.cwd(), *Path.cwd().parents):
        if (d / DEMO_CONFIG).is_file():
            return f"run it from {d}"
    return "run it from the root of a checkout of the modelswarm repository (there: make demo)"


def prepare_demo(config_path: Path = DEMO_CONFIG, name: Optional[str] = None, log: Callable[[str], None] = print):
    """The demo's Prepared run: checks the config and experts, converts the base model on first use."""
    from ..run.prepare import prepare

    if not Path(config_path).is_file():
        if Path(config_path) == DEMO_CONFIG:  # the default: the demo's files are in the repository, not the package
            raise UserError(config_path, f"not found here: the demo's config and experts are in the repository; {where_to_run()}")
        raise UserError(config_path, "demo config not found")
    cfg = load_config(config_path, {"name": name or time.strftime("demo-%Y%m%d-%H%M%S")})
    if not Path(cfg.experts).is_dir():
        raise UserError(cfg.experts, "demo experts missing: run `modelswarm experts make-demo` to rebuild them")
    t0 = time.time()
    base = ensure_base()
    log(f"base model ready: {base} ({time.time() - t0:.1f}s)")
    return prepare(cfg, config_path)
