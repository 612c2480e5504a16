"""Live progress: a rich table on a terminal, one plain line per iteration otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Optional

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..search.swarm import Swarm


def _fmt(x: float) -> str:
    return "-inf" if x == -math.inf else ("nan" if math.isnan(x) else f"{x:.4f}")


class Progress:
    def __init__(self, names: tuple[str, ...], max_iterations: int, live: Optional[bool] = None,
                 console: Optional[Console] = None):
        self.names = names
        self.max_iterations = max_iterations
        self.console = console or Console(stderr=False)
        self.live_mode = sys.stdout.isatty() if live is None else live
        self._live: Optional[Live] = None
        self._t0 = time.monotonic()
        self._evals = 0
        self._iter_times: list[float] = []
        self._last = time.monotonic()
        self.workers: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self.parts: dict[int, str] = {}  # particle -> its last evaluation's part scores (multitask), counts
        self.swarm: Optional[Swarm] = None
        self.status = "starting workers"

    def __enter__(self) -> "Progress":
        if self.live_mode:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None

    def message(self, text: str) -> None:
        self.status = text
        if self._live is not None:
            self._live.update(self.render())
        else:
            print(text, flush=True)

    def evaluation(self, particle: int, ev: Any) -> None:
        """One evaluation (state.Evaluation) finished or failed; shown: its worker, error, a
        multitask's score per part, events worth showing (llm_judge's unparsable ratings)."""
        worker, error, parts, counts = ev.worker, ev.error, ev.parts, ev.counts
        if self._evals == 0:  # rate and ETA count from the first result, not from worker start-up
            self._t0 = self._last = time.monotonic()
        self._evals += 1
        self.workers[particle] = worker
        if error:
            self.errors[particle] = error
        else:
            self.errors.pop(particle, None)
        shown = [f"{k} {_fmt(v)}" for k, v in (parts or {}).items()]
        shown += [f"{k.replace('_', ' ')} {v}" for k, v in (counts or {}).items() if v]
        self.parts[particle] = "  ".join(shown)
        if self._live is not None:
            self._live.update(self.render())

    def iteration(self, swarm: Swarm) -> None:
        now = time.monotonic()
        self._iter_times.append(now - self._last)
        self._last = now
        self.swarm = swarm
        if self._live is not None:
            self._live.update(self.render())
        else:
            print(self._line(swarm), flush=True)

    def _rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return self._evals / elapsed if elapsed > 0 else 0.0

    def _eta(self, swarm: Swarm) -> str:
        if not self._iter_times or swarm.iteration == 0:
            return "?"
        per_iter = float(np.mean(self._iter_times[-5:]))
        left = max(0, self.max_iterations - swarm.iteration)
        return f"<= {per_iter * left:.0f}s"

    def _line(self, s: Swarm) -> str:
        return (f"iter {s.iteration:3d}/{self.max_iterations}  best {_fmt(s.g_score)}  "
                f"mean {_fmt(float(np.mean(s.scores[np.isfinite(s.scores)])) if np.isfinite(s.scores).any() else -math.inf)}  "
                f"lambda {s.step:.3f}  restarts {int(s.restarts.sum())}  {_trace(s)}  "
                f"evals/s {self._rate():.2f}  eta {self._eta(s)}" + self._top_parts(s))

    def _top_parts(self, s: Swarm) -> str:
        """The parts (multitask) and counts of this iteration's best-scoring particle."""
        if not any(self.parts.values()) or not np.isfinite(s.scores).any():
            return ""
        i = int(np.nanargmax(np.where(np.isfinite(s.scores), s.scores, np.nan)))
        return f"  [particle {i}: {self.parts.get(i, '')}]"

    def render(self):
        s = self.swarm
        if s is None:
            return Text(self.status)
        head = Text(f"iteration {s.iteration}/{self.max_iterations}   global best {_fmt(s.g_score)}   "
                    f"lambda {s.step:.3f}   {_trace(s)}   evals/s {self._rate():.2f}   ETA {self._eta(s)}   "
                    f"{self.status}")
        table = Table(show_header=True, header_style="bold", box=None)
        has_parts = any(self.parts.values())
        cols = ("particle", "score") + (("parts",) if has_parts else ()) + ("personal best", "restarts", "|v|",
                                                                            "worker", "note")
        for col in cols:
            table.add_column(col, justify="left" if col in ("particle", "parts", "worker", "note") else "right")
        for i in range(s.size):
            label = self.names[i] if i < len(self.names) else f"child-{i}"
            style = "bold green" if s.p_scores[i] == s.g_score else None
            parts = (self.parts.get(i, ""),) if has_parts else ()
            table.add_row(f"{i} {label}", _fmt(s.scores[i]), *parts, _fmt(s.p_scores[i]), str(int(s.restarts[i])),
                          f"{float(np.linalg.norm(s.v[i])):.3f}", self.workers.get(i, ""),
                          self.errors.get(i, ""), style=style)
        return Group(head, table)


def _trace(s: Swarm) -> str:
    """The last iteration's spread and how many personal bests rose (diagnostics.py)."""
    if not s.trace:
        return ""
    t = s.trace[-1]
    return f"spread {t['spread']:.3f}  improved {t['improved']}/{t['evaluated']}"
