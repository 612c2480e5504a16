#!/usr/bin/env python3
"""Fail if installing the given requirements would build any package from an sdist.

    python .ci/no_sdists.py [--allow-sdist NAME,...] [pip install options and requirements]

Runs `pip install --dry-run --ignore-installed --report` with the same arguments and no
--only-binary, i.e. what a plain install on a new machine would fetch, and lists every
distribution that is not a wheel. The project itself (a local directory) is allowed, and
so are the distributions named by --allow-sdist (pure-Python packages PyPI has no wheel
of; building one runs no compiler).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(args: list[str]) -> int:
    allowed: set[str] = set()
    if args[:1] == ["--allow-sdist"]:
        allowed = {canonical(n) for n in args[1].split(",")}
        args = args[2:]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
               "--report", str(report), *args]
        subprocess.run(cmd, cwd=ROOT, check=True)
        installs = json.loads(report.read_text())["install"]
    sdists = []
    for item in installs:
        info = item["download_info"]
        if "dir_info" in info:  # a local directory: the project itself
            continue
        url = info["url"]
        if not url.endswith(".whl") and canonical(item["metadata"]["name"]) not in allowed:
            sdists.append(f"{item['metadata']['name']} {item['metadata']['version']}: {url}")
    label = " ".join(args)
    if sdists:
        print(f"no_sdists: installing {label} would build {len(sdists)} sdist(s):", file=sys.stderr)
        for line in sdists:
            print(f"  {line}", file=sys.stderr)
        return 1
    extra = f" (sdists allowed: {', '.join(sorted(allowed))})" if allowed else ""
    print(f"no_sdists: {label}: {len(installs)} distributions, all wheels{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
