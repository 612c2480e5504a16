"""pydantic's validation errors, as the one line a user reads: file, key, what is wrong.

pydantic reports a location path and an error type; this turns the first error into
"key 'swarm.phi_g' must be >= 0" or "unknown key 'sead' (did you mean 'seed'?)", naming
types in words ("an integer", "one of 'random', 'zero'"). It needs the model classes along
the path, to name the expected type and to suggest a close key.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ValidationError

from .errors import UserError

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _model_of(tp: Any) -> Optional[type[BaseModel]]:
    for t in (tp, *typing.get_args(tp)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _fields(model: type[BaseModel], raw: Any) -> dict[str, Any]:
    """Field name -> annotation; a utility section also has its kind's own keys."""
    from .config import UtilityConfig

    fields = {name: f.annotation for name, f in model.model_fields.items()}
    if model is UtilityConfig:
        from .utilities import REGISTRY

        fields.pop("params")
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind in REGISTRY:
            fields.update({n: f.annotation for n, f in REGISTRY[kind].Params.model_fields.items()})
    return fields


def _walk(model: type[BaseModel], raw: Any, loc: tuple) -> tuple[str, Any, dict[str, Any]]:
    """(dotted key, its annotation, the sibling fields) for a pydantic error location."""
    key, tp, siblings = "", model, {}
    for part in loc:
        if part == "params":  # the kind's keys are written flat under utility:
            continue
        sub = _model_of(tp)
        if isinstance(part, int) and typing.get_origin(tp) in (list, Union, types.UnionType):
            key += f"[{part}]"
            args = [a for a in typing.get_args(tp) if typing.get_origin(a) is list] or [tp]
            tp = typing.get_args(args[0])[0]
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
        elif sub is not None and isinstance(part, str):
            siblings = _fields(sub, raw)
            if part not in siblings:  # pydantic's union-branch label or an unknown key
                if part in sub.model_fields or isinstance(raw, dict) and part in raw:
                    key = f"{key}.{part}" if key else part
                break
            key = f"{key}.{part}" if key else part
            tp = siblings[part]
            raw = raw.get(part) if isinstance(raw, dict) else None
        else:
            break
    return key, tp, siblings


def user_error(exc: ValidationError, model: type[BaseModel], raw: Any, where: str) -> UserError:
    # a misspelt key is also a missing one: name the misspelling, it comes with a suggestion
    err = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    key, tp, siblings = _walk(model, raw, tuple(err["loc"]))
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        name = key.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(name, list(siblings), n=1)
        hint = f" (did you mean '{key[: len(key) - len(name)]}{close[0]}'?)" if close else ""
        return UserError(where, f"unknown key '{key}'{hint}")
    if kind == "missing":
        return UserError(where, f"missing required key '{key}'")
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return UserError(where, f"key '{key}' must be {_BOUNDS[kind]} {bound}")
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error") or err["msg"])
        if not key:  # a check across keys (e.g. the four phi weights): name the section
            key = ".".join(str(p) for p in err["loc"]) or "<top>"
        return UserError(where, f"key '{key}' {message}")
    got = err.get("input")
    return UserError(where, f"key '{key or '<top>'}' must be {type_name(tp)}, got {got!r}")
