"""The comparison as a table (terminal, README markdown) and compare.png (best-so-far curves).

With several seeds a second table follows: each method's test difference to model_swarms
with its 95% interval and its collapse count (stats.py), then the winner's validation-to-test
gap.

On a terminal narrower than the table, a compact layout (the range under the mean, shorter
headers, no vertical rules) keeps every name and number whole down to 80 columns; anything
that is not a terminal (a log, a pipe) gets the table at its full width, never cut."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np


def _fmt(s: dict[str, Any], compact: bool = False) -> str:
    """mean, with the spread over seeds where there is one: 0.512 ± 0.020 [0.49-0.53]
    (compact: the range on a line of its own, without leading zeros)."""
    if s["mean"] is None:
        return "failed"
    if s["n"] <= 1:
        return f"{s['mean']:.4f}"
    if compact:
        lo, hi = (re.sub(r"^(-?)0\.", r"\1.", f"{s[k]:.3f}") for k in ("min", "max"))
        return f"{s['mean']:.4f} ± {s['std']:.4f}\n[{lo}-{hi}]"
    return f"{s['mean']:.4f} ± {s['std']:.4f} [{s['min']:.3f}-{s['max']:.3f}]"


def table_rows(result: dict[str, Any], compact: bool = False) -> list[list[str]]:
    out = []
    for name in result["methods"]:  # the run's order (compare.json's keys are sorted)
        s = result["summary"][name]
        won = result.get("winner") and result["winner"]["method"] == name
        mark = ("\n" if compact else " ") + "(winner)" if won else ""
        out.append([name + mark, s["kind"], _fmt(s["val"], compact), _fmt(s["test"], compact),
                    f"{s['evaluations']:g}", f"{s['seconds']:.0f}", str(len(s["seeds"]))])
    return out


HEADER = ["method", "kind", "validation", "test", "val. evaluations", "seconds", "seeds"]
COMPACT_HEADER = ["method", "kind", "validation", "test", "evals", "sec.", "seeds"]


def compare_table(result: dict[str, Any], compact: bool = False):
    from rich import box
    from rich.table import Table

    b = result["budget"]
    title = (f"{result['name']}: {len(result['experts'])} experts, search budget "
             f"{b['searches']} ({b['from']}), seeds {result['seeds']}")
    rows = table_rows(result, compact)
    if not compact:
        t = Table(title=title)
    else:  # "evals": validation evaluations, as in the full table
        t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0, 0, 1), pad_edge=False)
    for i, h in enumerate(COMPACT_HEADER if compact else HEADER):
        # a name is never cut; anything else that must give way folds onto another line
        width = max(len(r[0].split("\n")[0]) for r in rows) if i == 0 and compact else None
        t.add_column(h, justify="left" if i < 2 else "right", overflow="fold", min_width=width, no_wrap=i == 0)
    for row in rows:
        t.add_row(*row, style="bold green" if "(winner)" in row[0] else None)
    return t


def _delta(d: Optional[dict[str, Any]]) -> str:
    """+0.0123 [-0.0050, +0.0290]: the test difference to model_swarms and its interval."""
    return "–" if d is None else f"{d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]"


def shows_stats(result: dict[str, Any]) -> bool:
    """The statistics table comes with several seeds (compare.json has the numbers always)."""
    return len(result.get("seeds", [])) > 1 and bool(result.get("stats"))


def stats_rows(result: dict[str, Any]) -> list[list[str]]:
    st, out = result["stats"], []
    for name in result["methods"]:
        m = st["methods"].get(name, {})
        c = m.get("collapse")
        delta = "reference" if name == st.get("reference") else _delta(m.get("test_delta"))
        out.append([name, delta, "–" if c is None else f"{c['collapsed']}/{c['of']}"])
    return out


def stats_header(result: dict[str, Any]) -> list[str]:
    return ["method", f"Δ test vs {result['stats'].get('reference') or 'model_swarms'} "
            f"[{round(result['stats']['confidence'] * 100)}% CI]", "collapsed"]


def gap_line(result: dict[str, Any]) -> str:
    """The winner's validation − test gap: of the means, then per seed."""
    g = result["stats"].get("winner_gap")
    if not g:
        return ""
    fmt = lambda x: "–" if x is None else f"{x:+.4f}"  # noqa: E731
    seeds = ", ".join(f"seed {k} {fmt(v)}" for k, v in g["seeds"].items())
    return f"winner {g['method']}: validation − test gap {fmt(g['mean'])} ({seeds})"


def stats_note(result: dict[str, Any]) -> str:
    """What the statistics table's columns are (stats.py has the definitions)."""
    st = result["stats"]
    within = st.get("collapse_within")
    return (f"Δ test: paired bootstrap over seeds and test examples, {st['resamples']} resamples. collapsed: "
            f"seeds whose final population's validation scores lie within one example"
            f"{f' ({within:g})' if within else ''}; – where a method has no population.")


def stats_table(result: dict[str, Any]):
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD)
    for i, h in enumerate(stats_header(result)):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i < 2)
    for row in stats_rows(result):
        t.add_row(*row)
    return t


def print_compare(result: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.measure import Measurement

    console = console or Console()
    t = compare_table(result)
    natural = Measurement.get(console, console.options.update_width(10_000), t).maximum
    if not console.is_terminal:  # a log: the whole table, however wide
        if natural > console.width:
            console = Console(file=console.file, width=natural, color_system=None, highlight=False)
    elif natural > console.width:
        t = compare_table(result, compact=True)
    console.print(t)
    if shows_stats(result):
        console.print(stats_table(result))
        for line in (stats_note(result), gap_line(result)):
            if line:
                console.print(line, highlight=False)


def markdown(result: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(result)]
    if shows_stats(result):
        header = stats_header(result)
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in stats_rows(result)]
        lines += ["", stats_note(result)] + (["", gap_line(result)] if gap_line(result) else [])
    return "\n".join(lines)


def best_so_far(curve: list[Optional[float]]) -> list[float]:
    out, best = [], -math.inf
    for x in curve:
        if x is not None and math.isfinite(x):
            best = max(best, x)
        out.append(best if math.isfinite(best) else np.nan)
    return out


def plot_compare(compare_dir: Path, result: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_write

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    searchers = [n for n in result["methods"] if result["summary"][n]["kind"] in ("swarm", "search")]
    for c, name in enumerate(searchers):
        for k, row in enumerate(r for r in result["rows"] if r["method"] == name):
            y = best_so_far(row["curve"])
            ax.plot(range(1, len(y) + 1), y, color=colors[c % len(colors)], alpha=1.0 if k == 0 else 0.35,
                    linewidth=2 if k == 0 else 1, label=name if k == 0 else None)
    for name, s in result["summary"].items():  # the rest: their best as a point at their count
        if s["kind"] in ("fixed", "merge") and s["val"]["mean"] is not None:
            ax.scatter([s["evaluations"]], [s["val"]["mean"]], marker="x", s=30, color="gray")
            ax.annotate(name, (s["evaluations"], s["val"]["mean"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points", color="dimgray")
    ax.set_xlabel("validation evaluations used")
    ax.set_ylabel("best validation score so far")
    ax.set_title(f"{result['name']}: searches at an equal budget")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    out = Path(compare_dir) / "compare.png"
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return out
