"""Validation JSONL: read it with file:line errors, and check each example's fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs; blank lines skipped; any malformed line is an error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "data file not found")
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}:{lineno}", f"not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}", f"not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}", "each line must be a JSON object")
            rows.append((lineno, obj))
    if not rows:
        raise UserError(path, "no examples (the file is empty)")
    return rows


def require(obj: dict, key: str, kind: type | tuple, where: str) -> Any:
    if key not in obj:
        raise UserError(where, f"missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise UserError(where, f"field '{key}' must be {names}, got {value!r}")
    return value
