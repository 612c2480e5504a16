"""The README's utility section covers every kind, and its key tables are those the kinds declare."""

from pathlib import Path

from modelswarm.utilities import REGISTRY
from modelswarm.utilities.docs import MARKED, fill, params_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_kind_is_described_with_the_keys_it_declares():
    text = README.read_text(encoding="utf-8")
    assert fill(text) == text, "README key tables are stale: run python -m modelswarm.utilities.docs"
    tabled = set(MARKED.findall(text))
    for kind, cls in REGISTRY.items():
        assert f"**`{kind}`**" in text, f"README has no paragraph on utility kind {kind}"
        if cls.Params.model_fields:
            assert kind in tabled, f"README has no key table for {kind}"
            for name, field in cls.Params.model_fields.items():
                assert field.description, f"{kind}.{name} has no description"


def test_the_table_lists_defaults_and_required_keys():
    table = params_table("reward_model")
    assert "| `utility.reward_model` | required |" in table and "| `utility.mode` | `\"default\"` |" in table
