"""The README's per-kind key tables, generated from each utility's `Params` declarations
(tests/test_utility_docs.py checks that the README holds exactly these)."""

from __future__ import annotations

import re
import sys

from pydantic_core import PydanticUndefined

from .base import REGISTRY

LONG = 40  # a longer default is left to the description


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default
    if isinstance(value, str):
        return "(see meaning)" if len(value) > LONG or "\n" in value else f"`{value!r}`".replace("'", '"')
    return f"`{value}`"


def params_table(kind: str) -> str:
    """A markdown table of the keys `kind` adds under `utility:` ('' when it adds none)."""
    fields = REGISTRY[kind].Params.model_fields
    if not fields:
        return ""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, field in fields.items():
        rows.append(f"| `utility.{name}` | {_default(field)} | {(field.description or '').strip()} |")
    return "\n".join(rows)


MARKED = re.compile(r"<!-- utility-keys:(\w+) -->\n.*?<!-- /utility-keys -->", re.S)


def fill(readme: str) -> str:
    """The README with every `<!-- utility-keys:KIND -->` block regenerated."""
    return MARKED.sub(lambda m: f"<!-- utility-keys:{m.group(1)} -->\n{params_table(m.group(1))}\n"
                                "<!-- /utility-keys -->", readme)


if __name__ == "__main__":  # python -m modelswarm.utilities.docs [README.md]: rewrite its tables
    path = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(fill(text))
