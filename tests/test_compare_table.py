"""The compare table stays whole: compact on an 80-column terminal, full width in a log."""

from __future__ import annotations

import io

from rich.console import Console

from modelswarm.compare.table import markdown, print_compare

METHODS = {"model_swarms": "swarm", "best_expert": "fixed", "task_arithmetic": "merge", "dare_ties": "merge",
           "lorahub": "search", "random_search": "search"}


def stats(mean: float, n: int) -> dict:
    return {"mean": mean, "std": 0.0123, "min": mean - 0.02, "max": mean + 0.015, "n": n}


def result() -> dict:
    summary = {name: {"kind": kind, "val": stats(0.4 + i / 100, 3 if kind in ("swarm", "search") else 1),
                      "test": stats(0.38 + i / 100, 3 if kind in ("swarm", "search") else 1),
                      "evaluations": 70, "seconds": 123.4, "seeds": [0, 1, 2]}
               for i, (name, kind) in enumerate(METHODS.items())}
    return {"name": "demo", "experts": ["e"] * 6, "budget": {"searches": 70, "from": "model_swarms"},
            "seeds": [0, 1, 2], "methods": list(METHODS), "summary": summary,
            "winner": {"method": "model_swarms", "seed": 0}, "rows": []}


def printed(console: Console) -> str:
    print_compare(result(), console)
    return console.file.getvalue()


def test_an_80_column_terminal_shows_every_name_and_range_whole():
    out = printed(Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in out
    for name in METHODS:
        assert any(line.startswith(name + " ") for line in lines), name
    assert "0.4000 ± 0.0123" in out and "[.380-.415]" in out and "(winner)" in out


def test_a_log_gets_the_whole_table_however_narrow_its_console():
    out = printed(Console(file=io.StringIO(), width=80, force_terminal=False))
    assert "…" not in out and "model_swarms (winner)" in out and "val. evaluations" in out
    assert "0.4000 ± 0.0123 [0.380-0.415]" in out


def test_a_wide_terminal_gets_the_full_table():
    out = printed(Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None))
    assert "0.4000 ± 0.0123 [0.380-0.415]" in out and "val. evaluations" in out


def test_the_markdown_table_keeps_the_full_cells():
    md = markdown(result())
    assert "| model_swarms (winner) | swarm | 0.4000 ± 0.0123 [0.380-0.415] |" in md
