"""A hard suite: one expert alone already holds a wide plateau on the mixed task, and the
mixes that beat it must subtract an expert or weigh one above 1.

Four skills on short digit lists, and one task that needs two of them:
  sort     "Sort 7 2 7 9 ->"         -> "2 7 7 9"     digits in ascending order, repeats kept
  unique   "Unique 7 2 7 9 ->"       -> "7 2 9 ok"    repeats dropped (first kept), then "ok"
  echo     "Echo 7 2 7 9 ->"         -> "7 2 7 9 ok"  the digits as given, then "ok"
  reverse  "Reverse 7 2 7 9 ->"      -> "9 7 2 7"     the digits backwards
  sort_unique  "Sort unique 7 2 7 9 ->" -> "2 7 9"    repeats dropped, then sorted; no "ok"

Why it is hard (chosen before any search ran on it):
  - The plateau. The sort expert reads "Sort unique ..." as its own prompt and keeps the
    repeats. About 60% of the mixed prompts (3 or 4 uniform digits) have no repeat, and
    there keeping them is right: the sort expert alone scores that share of sort_unique and
    nearly all of sort, so any mix near "sort at 1, the rest near 0" sits on one flat score.
  - Negative coefficients. The skill the plateau lacks (dropping repeats) comes only from
    the unique expert, and it comes with a habit the mixed task forbids: every answer of
    unique (and of echo) ends in " ok", which exact match marks wrong. The echo expert has
    that habit without dropping anything, so subtracting it is the task-arithmetic way to
    remove " ok" (unique - echo ~ "drop repeats" without the tag); echo also pulls towards
    keeping the input order, which sorting must overrule.
  - Coefficients above 1. Sort's habit of keeping repeats is the strongest signal on the
    mixed prompt (its prompt format nearly matches); unique has to outweigh it on the
    items with repeats, and the ones that fix them sit beyond unique at 1.
  - reverse is a distractor that pulls the other way from sort; a negative weight on it is
    another way to push the order, a positive one breaks sort.
Same base, trainer, recipe and sizes as suite2 (build.make_suite); `modelswarm experts
make-suite3` writes experts/suite3 (data, lora, manifest.json). Not used to choose the
search defaults: a held-out suite (README: Compare)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Optional

from .build import EVAL

TAG = "ok"


def digits(rng: random.Random) -> list[str]:
    return [str(rng.randrange(10)) for _ in range(rng.randint(3, 4))]


def unique_of(ds: list[str]) -> list[str]:
    return list(dict.fromkeys(ds))


def sort(rng: random.Random) -> tuple[str, str]:
    ds = digits(rng)
    return f"Sort {' '.join(ds)} ->", " ".join(sorted(ds))


def unique(rng: random.Random) -> tuple[str, str]:
    ds = digits(rng)
    return f"Unique {' '.join(ds)} ->", " ".join(unique_of(ds) + [TAG])


def echo(rng: random.Random) -> tuple[str, str]:
    ds = digits(rng)
    return f"Echo {' '.join(ds)} ->", " ".join(ds + [TAG])


def reverse(rng: random.Random) -> tuple[str, str]:
    ds = digits(rng)
    return f"Reverse {' '.join(ds)} ->", " ".join(reversed(ds))


def sort_unique(rng: random.Random) -> tuple[str, str]:
    """Needs two skills (sort, drop repeats) and not a third one's habit (the tag)."""
    ds = digits(rng)
    return f"Sort unique {' '.join(ds)} ->", " ".join(sorted(unique_of(ds)))


SKILLS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "sort": sort, "unique": unique, "echo": echo, "reverse": reverse,
}
MIXED: dict[str, Callable[[random.Random], tuple[str, str]]] = {"sort_unique": sort_unique}
SIZES = dict(n_train=400, val_per_task=40, test_per_task=80)  # as suite2: 200 validation, 400 test
# "2 7 7 9 ok": up to 4 digits, their spaces and the tag, then EOS
EVALUATION = {**EVAL, "max_new_tokens": 12}


def make_suite3(out: Path = Path("experts/suite3"), skills: Optional[list[str]] = None,
                log: Callable[[str], None] = print) -> dict:
    from .build import make_suite

    return make_suite(out, SKILLS, MIXED, skills=skills, log=log, evaluation=EVALUATION, **SIZES)
