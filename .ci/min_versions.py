#!/usr/bin/env python3
"""Print pip requirements pinning torch, transformers, peft and ray to the floors in pyproject.toml.

    python .ci/min_versions.py          the floors of the core dependencies
    python .ci/min_versions.py demo     the same, raised where the `demo` extra raises them

`make test-min` installs these (everything else at its newest) and runs the tests, so each
floor in pyproject.toml is a version the tests passed on.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PINNED = ("torch", "transformers", "peft", "ray")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floors(deps: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (extras such as "[default]", floor version) for the PINNED names in deps."""
    out = {}
    for dep in deps:
        for name in PINNED:
            m = re.match(rf"^{name}(\[[^\]]*\])?\s*(.*)$", dep)
            if m:
                floor = re.search(r">=\s*([0-9][0-9a-zA-Z.]*)", m.group(2))
                if floor is None:
                    raise SystemExit(f"{PYPROJECT}: {dep!r} has no >= floor")
                out[name] = (m.group(1) or "", floor.group(1))
    return out


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def main(args: list[str]) -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    pins = floors(project["dependencies"])
    missing = [n for n in PINNED if n not in pins]
    if missing:
        print(f"{PYPROJECT}: no floor for {', '.join(missing)}", file=sys.stderr)
        return 1
    for extra in args:
        for name, (extras, v) in floors(project["optional-dependencies"][extra]).items():
            if version_key(v) > version_key(pins[name][1]):
                pins[name] = (pins[name][0] or extras, v)
    print(" ".join(f"{n}{pins[n][0]}=={pins[n][1]}" for n in PINNED))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
