"""`modelswarm demo` / `make demo`: base model ready, experts present, then an ordinary run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from ..config import load_config
from ..errors import UserError
from .smollm import ensure_base

DEMO_CONFIG = Path("swarm_configs/demo.yaml")


def prepare_demo(config_path: Path = DEMO_CONFIG, name: Optional[str] = None, log: Callable[[str], None] = print):
    """The demo's Prepared run: converts the base model on first use, checks the experts."""
    from ..coordinator import prepare

    if not Path(config_path).is_file():
        raise UserError(config_path, "demo config not found (run from the repository root)")
    t0 = time.time()
    base = ensure_base()
    log(f"base model ready: {base} ({time.time() - t0:.1f}s)")
    cfg = load_config(config_path, {"name": name or time.strftime("demo-%Y%m%d-%H%M%S")})
    if not Path(cfg.experts).is_dir():
        raise UserError(cfg.experts, "demo experts missing: run `modelswarm experts make-demo` to rebuild them")
    return prepare(cfg, config_path)
