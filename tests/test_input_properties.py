"""Whatever a user writes, a data line or a config, it is accepted or refused with a
UserError: no input reaches a traceback (property-based, over generated inputs)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelswarm.config import config_from_dict
from modelswarm.errors import UserError
from modelswarm.objectives import make_utility, utility_config

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                            max_size=4), max_leaves=8)
FIELDS = ["prompt", "answer", "question", "choices", "task", "reference"]
# mostly the fields a kind reads, with values of any type, and now and then other keys
lines = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), values, max_size=5)
raw_lines = st.one_of(lines.map(lambda d: json.dumps(d).encode()), st.binary(max_size=40))


def refused_or_loaded(kind: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "val.jsonl"
        path.write_bytes(data)
        utility = make_utility(utility_config(kind=kind, data=str(path)))
        try:
            utility.load(path)
        except UserError:
            pass


@pytest.mark.parametrize("kind", ["exact_match", "multiple_choice"])
@SETTINGS
@given(rows=st.lists(raw_lines, min_size=0, max_size=4))
def test_no_data_line_reaches_a_traceback(kind, rows):
    refused_or_loaded(kind, b"\n".join(rows) + b"\n")


CONFIG_KEYS = ["base_model", "experts", "utility", "swarm", "workers", "seed", "name", "runs_dir"]
configs = st.dictionaries(st.sampled_from(CONFIG_KEYS) | st.text(max_size=6), values, max_size=6)
utility_sections = st.fixed_dictionaries({"kind": st.sampled_from(["exact_match", "multiple_choice", "python",
                                                                   "multitask", "reward_model", "llm_judge", "?"])},
                                         optional={"data": values, "parts": values, "function": values,
                                                   "batch_sequences": values, "max_new_tokens": values})


@SETTINGS
@given(raw=configs | st.lists(values, max_size=3) | scalars,
       utility=utility_sections, swarm=st.dictionaries(st.text(max_size=12), values, max_size=3))
def test_no_config_reaches_a_traceback(raw, utility, swarm):
    for candidate in (raw, {**raw, "utility": utility, "swarm": swarm} if isinstance(raw, dict) else raw):
        try:
            config_from_dict(candidate, "c.yaml", warn=lambda line: None)
        except UserError as exc:
            assert str(exc).startswith("c.yaml"), str(exc)
