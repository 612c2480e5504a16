"""The run directory: resolved config, swarm snapshot, evaluation journal.

  config.yaml        the resolved config (absolute paths)
  experts.json       expert names and sources, checked again on resume
  state.json         the whole swarm after the last completed iteration (atomic)
  evaluations.jsonl  one line per finished evaluation, appended + fsynced; also the cache:
                     on resume, evaluations done after the last snapshot are replayed from
                     here instead of recomputed
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ..weights.candidates import Candidate, CoefficientRow, DeltaMerge, coeff_hash, merge_hash  # noqa: F401  (the keys' home)
from ..config import Config, dump_config, load_config
from ..errors import UserError, no_space
from ..io import append_line, atomic_write_bytes, atomic_write_json, atomic_write_text, dumps
from .lock import RunLock
from .packing import packed_result, unpacked
from .swarm import Swarm
from ..objectives.base import Score
from ..cluster.worker import EvalResult

STATE_VERSION = 2  # 2: the official restart and stop rules (per-particle best_at, no stale counters)
@dataclass(frozen=True, slots=True)  # slots: the cache holds one per evaluation of the run (packing.py)
class Evaluation:
    """One finished evaluation, a line of the journal: what was scored (the candidate), on
    which split, and the worker's result (None when it failed for good: see error).

    The journal line is flat (the candidate's field, the Score's fields, seconds, worker),
    as it has always been, so old journals read; the properties read it as before."""

    iteration: Optional[int]  # the search iteration (0 = the initial swarm); None outside the search
    particle: int
    hash: str  # the candidate's key
    candidate: Candidate
    result: Optional[EvalResult]
    split: str = "val"  # "val" (what the search optimises) or "test" (held out)
    bound: Optional[float] = None  # set when scoring stopped early: score is an upper bound below it
    error: Optional[str] = None

    failed = property(lambda self: self.error is not None)
    score = property(lambda self: math.nan if self.result is None else self.result.score)  # nan: failed
    seconds = property(lambda self: 0.0 if self.result is None else self.result.seconds)
    worker = property(lambda self: "" if self.result is None else self.result.worker)
    per_example = property(lambda self: None if self.result is None else unpacked(self.result.per_example))
    answers = property(lambda self: None if self.result is None else unpacked(self.result.answers))
    parts = property(lambda self: None if self.result is None else self.result.parts)  # multitask: per part
    counts = property(lambda self: None if self.result is None else self.result.counts)  # llm_judge events
    secondary = property(lambda self: None if self.result is None else self.result.secondary)  # utility.tie_break
    coeffs = property(lambda self: list(getattr(self.candidate, "coeffs", ())))  # [] for other candidates
    merge = property(lambda self: self.candidate.to_dict() if isinstance(self.candidate, DeltaMerge) else None)

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "iteration": self.iteration, "particle": self.particle, "hash": self.hash, "coeffs": self.coeffs,
            "score": self.score,  # dumps writes a failure (nan) as null, an infinite score as "inf" / "-inf"
            "seconds": self.seconds, "worker": self.worker, "error": self.error, "per_example": self.per_example,
            "bound": self.bound, "answers": self.answers, "split": self.split, "parts": self.parts,
            "counts": self.counts,
        }
        if self.secondary is not None:  # utility.tie_break only: other journals keep their lines
            d["secondary"] = self.secondary
        if not isinstance(self.candidate, CoefficientRow):  # a plain run's lines keep their fields
            d.update(self.candidate.to_json())
        return dumps(d, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        """A journal line (any version) or the same fields given by keyword."""
        error = d.get("error")
        result = None
        if error is None:
            score = math.nan if d["score"] is None else float(d["score"])
            utility = Score(value=score, per_example=d.get("per_example"), early_exit=d.get("bound") is not None,
                            answers=d.get("answers"), parts=d.get("parts"), counts=d.get("counts"),
                            secondary=d.get("secondary"))
            result = packed_result(EvalResult(utility=utility, seconds=d.get("seconds", 0.0), worker=d.get("worker", "")))
        return cls(iteration=d["iteration"], particle=d["particle"], hash=d["hash"],
                   candidate=Candidate.from_json(d), result=result, split=sys.intern(d.get("split", "val")),
                   bound=d.get("bound"), error=error)


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.yaml")
    experts_file = property(lambda self: self.path / "experts.json")
    state_file = property(lambda self: self.path / "state.json")
    journal_file = property(lambda self: self.path / "evaluations.jsonl")
    summary_file = property(lambda self: self.path / "summary.json")
    iterations_file = property(lambda self: self.path / "iterations.jsonl")
    best_dir = property(lambda self: self.path / "best")

    def exists(self) -> bool:
        return self.config_file.is_file()

    def check_new(self) -> None:
        if self.exists():
            raise UserError(self.path, "run directory already exists: resume it (modelswarm resume) or change 'name'")

    def holds_nothing(self) -> bool:
        """No snapshot and no successful evaluation: nothing a resume could use."""
        return not self.state_file.exists() and all(ev.failed for ev in self.read_journal())

    def discard(self) -> None:
        """Remove what a run writes before its first snapshot (only that: a folder the user
        made keeps their own files)."""
        for f in (self.config_file, self.experts_file, self.journal_file, self.iterations_file):
            f.unlink(missing_ok=True)

    def remove_if_empty(self) -> None:
        try:
            self.path.rmdir()
        except OSError:  # not empty: another process has begun there, or the user's files
            pass

    def writing(self, path: Path):
        """Around a write into the run: a full disk is a UserError saying how to go on."""
        if not self.exists():
            return no_space(path, "nothing of the run is written yet: free some space, then start it again")
        return no_space(path, "the run is saved up to its last complete step: free some space, then "
                              f"resume with `modelswarm resume {self.path}`")

    def create(self, config: Config, names: tuple[str, ...], sources: tuple[str, ...],
               config_source: Optional[Path] = None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        source = str(Path(config_source).resolve()) if config_source else None
        with self.writing(self.experts_file):
            atomic_write_json(self.experts_file, {"names": list(names), "sources": list(sources),
                                                  "config_source": source})
        with self.writing(self.config_file):
            atomic_write_text(self.config_file, dump_config(config))

    def load_config(self) -> Config:
        if not self.exists():
            raise UserError(self.path, "not a run directory (no config.yaml)")
        return load_config(self.config_file)

    def config_source(self) -> Optional[Path]:
        """The YAML the run was started from (its folder is searched for python utilities)."""
        src = self.read_json(self.experts_file).get("config_source")
        return Path(src) if src else None

    def check_experts(self, names: tuple[str, ...]) -> None:
        recorded = self.read_json(self.experts_file)["names"]
        if list(names) != recorded:
            raise UserError(self.experts_file, f"the run was started with experts {recorded}, "
                                               f"but the config now gives {list(names)}")

    def check_scoring(self, config: Config) -> None:
        """The journal's scores stand only for the settings that made them: refuse a config
        that scores differently (another base model, utility section or dtype). tie_break only
        adds a number to a line: an evaluation that needs it and finds none scores again
        (evaluations.py), so the journal stands for both settings."""
        stored = self.load_config()
        same = lambda u: u.model_dump(exclude={"tie_break"})  # noqa: E731
        pairs = {"base_model": (stored.base_model, config.base_model),
                 "utility": (same(stored.utility), same(config.utility)),
                 "workers.dtype": (stored.workers.dtype, config.workers.dtype)}
        for key, (old, new) in pairs.items():
            if old != new:
                raise UserError(self.config_file, f"its journal was scored with another '{key}' than the config "
                                                  "now gives: use --out for a new directory, or the old config")

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(path, "file not found") from None
        except json.JSONDecodeError as exc:
            raise UserError(path, f"corrupt JSON ({exc.msg})") from None

    # --- snapshot ----------------------------------------------------------------------

    def save_state(self, swarm: Swarm, extra: dict[str, Any]) -> None:
        with self.writing(self.state_file):
            atomic_write_json(self.state_file, {"version": STATE_VERSION, "swarm": swarm.to_json(), **extra})
        # a readable copy of the swarm's per-iteration trace, derived from the state just written
        with self.writing(self.iterations_file):
            atomic_write_text(self.iterations_file, "".join(dumps(t) + "\n" for t in swarm.trace))

    def load_state(self, config: Config) -> tuple[Optional[Swarm], dict[str, Any]]:
        d = self.read_state()
        return (Swarm.from_json(d["swarm"], config.swarm) if d else None), d

    def read_state(self) -> dict[str, Any]:
        """The last snapshot as written (the swarm as JSON under "swarm"); {} before the first."""
        self.drop_leftovers()
        if not self.state_file.exists():
            return {}
        d = self.read_json(self.state_file)
        if d.get("version") != STATE_VERSION:
            raise UserError(self.state_file, f"state version {d.get('version')} is not {STATE_VERSION}: "
                                             "written by another modelswarm version; start a new run")
        return d

    def drop_leftovers(self) -> None:
        """Remove the temporary files and folders of atomic writes that a kill interrupted
        (io.atomic_write names them .<target>.<random>.tmp); nothing ever reads them."""
        for tmp in self.path.glob(".*.tmp"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)

    # --- journal -----------------------------------------------------------------------

    def append(self, ev: Evaluation) -> None:
        with self.writing(self.journal_file):
            append_line(self.journal_file, ev.to_json())

    def read_journal(self) -> list[Evaluation]:
        """The journal's evaluations, read line by line (a run of 20,000 evaluations has a
        journal of 10+ MB: read whole, it and its lines would sit in memory at once)."""
        if not self.journal_file.exists():
            return []
        out, complete = [], 0
        with open(self.journal_file, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    # a crash mid-append leaves a last line without its newline: that entry never finished
                    break
                complete += len(line)
                if not line.strip():
                    continue
                try:
                    out.append(Evaluation.from_dict(json.loads(line)))
                except (ValueError, TypeError, KeyError) as exc:  # ValueError: bad JSON or UTF-8
                    raise UserError(f"{self.journal_file}:{lineno}", f"corrupt journal line ({exc})") from None
        if complete < self.journal_file.stat().st_size:
            data = self.journal_file.read_bytes()
            if data[complete:].strip():  # drop the torn tail so later appends start on a fresh line
                with self.writing(self.journal_file):
                    atomic_write_bytes(self.journal_file, data[:complete])
        return out


@contextmanager
def open_run(config: Config, names: tuple[str, ...], sources: tuple[str, ...], config_source: Optional[Path],
             resume: bool) -> Iterator[tuple[RunDir, dict[str, Any]]]:
    """The run directory, locked to this process for the run: a resumed one checked against
    the experts and its last snapshot read (RunDir.read_state; {}: none yet), a new one created
    (refused where a run exists). A new run that stops on bad input before it holds anything
    (the first evaluations can show it) leaves nothing behind."""
    rd = RunDir(config.run_dir)
    if resume and not rd.exists():
        raise UserError(rd.path, "nothing to resume: not a run directory")
    if not resume:
        rd.check_new()
    rd.path.mkdir(parents=True, exist_ok=True)
    with RunLock(rd.path) as lock:  # one process at a time on a run directory
        try:
            if resume:
                rd.check_experts(names)
                saved = rd.read_state()
            else:
                rd.check_new()  # again, under the lock: another process may have created it meanwhile
                rd.create(config, names, sources, config_source)
                saved = {}
            yield rd, saved
        except UserError:
            if not resume and rd.holds_nothing():
                rd.discard()  # under the lock; the folder goes after it, if nobody else has begun there
                lock.release()
                rd.remove_if_empty()
            raise
