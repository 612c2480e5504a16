"""pydantic's validation errors, as the one line a user reads: file, key, what is wrong.

pydantic reports a location path and an error type; this turns the first error into
"key 'swarm.phi_g' must be >= 0" or "unknown key 'sead' (did you mean 'seed'?)", naming
types in words ("an integer", "one of 'random', 'zero'"). It walks the model classes along
the path, to name the expected type and to suggest a close key; a section that is a
union of models tagged by a key (`utility:`, by `kind`) is walked into the tagged member.
It knows pydantic, not modelswarm's models.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ValidationError

from .errors import UserError

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return type_name(typing.get_args(tp)[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(dict.fromkeys(names))  # a union of models is "a mapping", once
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _members(tp: Any) -> list[type[BaseModel]]:
    """The models a (possibly Annotated, possibly union) annotation admits."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    return [t for t in args if isinstance(t, type) and issubclass(t, BaseModel)]


def _tagged(models: list[type[BaseModel]], tag: str) -> Optional[type[BaseModel]]:
    """The member of a tagged union whose Literal-typed key has the value `tag`."""
    for m in models:
        for f in m.model_fields.values():
            if typing.get_origin(f.annotation) is Literal and tag in typing.get_args(f.annotation):
                return m
    return None


def _noun(field: Any, tp: Any) -> str:
    """What a tagged union holds, from its title ("utility"), else "value"."""
    metadata = list(getattr(field, "metadata", ()))
    if typing.get_origin(tp) is Annotated:
        metadata += list(typing.get_args(tp)[1:])
    titles = [getattr(field, "title", None)] + [getattr(m, "title", None) for m in metadata]
    return next((t for t in titles if t), "value")


def _walk(model: type[BaseModel], raw: Any, loc: tuple) -> tuple[str, Any, dict[str, Any], str]:
    """(dotted key, its annotation, the sibling fields, the noun of a tagged union there)
    for a pydantic error location."""
    key, tp, siblings, field = "", model, {}, None
    for part in loc:
        models = _members(tp)
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp
        if isinstance(part, int) and typing.get_origin(inner) in (list, Union, types.UnionType):
            key += f"[{part}]"
            args = [a for a in typing.get_args(inner) if typing.get_origin(a) is list] or [inner]
            tp = typing.get_args(args[0])[0]
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
        elif models and isinstance(part, str):
            sub = models[0]
            if len(models) > 1:  # a tagged union: the location names the member, not a key
                member = _tagged(models, part)
                if member is not None:
                    tp = member
                    continue
            fields = {name: f for name, f in sub.model_fields.items()}
            siblings = {name: f.annotation for name, f in fields.items()}
            if part not in siblings:  # pydantic's union-branch label or an unknown key
                if isinstance(raw, dict) and part in raw:
                    key = f"{key}.{part}" if key else part
                break
            key = f"{key}.{part}" if key else part
            field, tp = fields[part], siblings[part]
            raw = raw.get(part) if isinstance(raw, dict) else None
        else:
            break
    return key, tp, siblings, _noun(field, tp)


def user_error(exc: ValidationError, model: type[BaseModel], raw: Any, where: str) -> UserError:
    # a misspelt key is also a missing one: name the misspelling, it comes with a suggestion
    err = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    key, tp, siblings, noun = _walk(model, raw, tuple(err["loc"]))
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # the tag key of a tagged union (utility.kind)
        tag_key = f"{key}.{ctx['discriminator'].strip(chr(39))}"
        if kind == "union_tag_not_found":
            return UserError(where, f"missing required key '{tag_key}'")
        have = ", ".join(sorted(t.strip().strip("'") for t in ctx["expected_tags"].split(",")))
        return UserError(where, f"key '{tag_key}' is {ctx['tag']!r}, an unknown {noun} (have: {have})")
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
