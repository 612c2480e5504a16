"""The run directory: resolved config, swarm snapshot, evaluation journal.

  config.yaml        the resolved config (absolute paths)
  experts.json       expert names and sources, checked again on resume
  state.json         the whole swarm after the last completed iteration (atomic)
  evaluations.jsonl  one line per finished evaluation, appended + fsynced; also the cache:
                     on resume, evaluations done after the last snapshot are replayed from
                     here instead of recomputed
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from .config import Config, dump_config, load_config
from .errors import UserError
from .io import append_line, atomic_write_json, atomic_write_text, dumps
from .swarm import Swarm

STATE_VERSION = 2  # 2: the official restart and stop rules (per-particle best_at, no stale counters)
NO_SPACE = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large (the process's file size limit, or the filesystem's largest file)",
    errno.EDQUOT: "disk quota exceeded",
}


@contextmanager
def no_space(path: str | Path, then: str) -> Iterator[None]:
    """A full disk (or quota, or file size limit) while writing `path` becomes a one-line
    UserError naming it; `then` says what to do. Other errors pass through."""
    try:
        yield
    except Exception as exc:
        why = NO_SPACE.get(errno_of(exc))  # type: ignore[arg-type]
        if why is None:
            raise
        raise UserError(path, f"{why} while writing it; {then}") from None


def errno_of(exc: BaseException) -> Optional[int]:
    if isinstance(exc, OSError):
        return exc.errno
    found = re.search(r"\(os error (\d+)\)", str(exc))  # Rust I/O errors (safetensors) carry it in the text
    return int(found.group(1)) if found else None


def merge_hash(key: str) -> str:
    """Identity of a delta-space merge: its spec as canonical JSON (never equal to a coeff_hash)."""
    return "m" + hashlib.sha256(key.encode()).hexdigest()[:19]


def coeff_hash(coeffs: Iterable[float]) -> str:
    """Identity of a particle position: the exact float64 bytes, so a replay matches bit for bit."""
    data = np.ascontiguousarray(np.asarray(list(coeffs), dtype="<f8")).tobytes()
    return hashlib.sha256(data).hexdigest()[:20]


@dataclass(frozen=True)
class Evaluation:
    """One finished evaluation, a line of the journal."""

    iteration: Optional[int]  # the search iteration (0 = the initial swarm); None outside the search
    particle: int
    hash: str
    coeffs: list[float]
    score: float  # nan when it failed for good (see error)
    seconds: float
    worker: str = ""
    error: Optional[str] = None
    per_example: Optional[list[float]] = None
    bound: Optional[float] = None  # set when scoring stopped early: score is an upper bound below it
    answers: Optional[list[Any]] = None  # per-example answers where the utility has them (multiple_choice)
    split: str = "val"  # "val" (what the search optimises) or "test" (held out)
    parts: Optional[dict[str, float]] = None  # multitask: each part's score (an upper bound with `bound`)
    counts: Optional[dict[str, int]] = None  # events of the evaluation (llm_judge: unparsable_ratings)
    merge: Optional[dict[str, Any]] = None  # a delta-space merge (modelswarm compare) instead of coeffs

    def to_json(self) -> str:
        d = dict(self.__dict__)
        if d["merge"] is None:  # the journal of a plain run keeps its fields
            del d["merge"]
        # JSON has no inf or nan: a failure is null, an infinite score the string "inf" / "-inf"
        d["score"] = None if math.isnan(self.score) else self.score if math.isfinite(self.score) else str(self.score)
        return dumps(d, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        d = dict(d)
        d["score"] = math.nan if d["score"] is None else float(d["score"])
        return cls(**d)

    @property
    def failed(self) -> bool:
        return self.error is not None


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
        that scores differently (another base model, utility section or dtype)."""
        stored = self.load_config()
        pairs = {"base_model": (stored.base_model, config.base_model),
                 "utility": (stored.utility.model_dump(), config.utility.model_dump()),
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
        self.drop_leftovers()
        if not self.state_file.exists():
            return None, {}
        d = self.read_json(self.state_file)
        if d.get("version") != STATE_VERSION:
            raise UserError(self.state_file, f"state version {d.get('version')} is not {STATE_VERSION}: "
                                             "written by another modelswarm version; start a new run")
        return Swarm.from_json(d["swarm"], config.swarm), d

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
        if not self.journal_file.exists():
            return []
        text = self.journal_file.read_text(encoding="utf-8")
        lines = text.split("\n")
        # a crash mid-append leaves a last line without its newline: that entry never finished
        complete, torn = lines[:-1], lines[-1]
        out = []
        for lineno, line in enumerate(complete, 1):
            if not line.strip():
                continue
            try:
                out.append(Evaluation.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                raise UserError(f"{self.journal_file}:{lineno}", f"corrupt journal line ({exc})") from None
        if torn.strip():
            # drop the torn tail so later appends start on a fresh line
            with self.writing(self.journal_file):
                atomic_write_text(self.journal_file, "\n".join(complete) + ("\n" if complete else ""))
        return out
