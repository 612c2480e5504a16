"""A second suite, so `modelswarm compare` is not judged on the demo's tasks alone.

Four skills the demo does not have, and one task that needs two of them:
  count   "Count a in banana:"        -> "3"        letters in a word
  sort    "Sort 7 2 9 ->"             -> "2 7 9"    digits in ascending order
  shift   "Shift c k ->"              -> "d l"      each letter to the next one
  max     "Last of q c f:"            -> "q"        the alphabetically last letter
  shift_of_max  "Shift last of q c f ->" -> "r"     max, then shift
Same base, trainer, recipe and sizes as the demo (build.make_suite); `modelswarm experts
make-suite2` writes experts/suite2 (data, lora, manifest.json)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Optional

from .tasks import LETTERS

WORDS = ["banana", "apple", "letter", "summer", "coffee", "balloon", "mississippi", "pepper", "bookkeeper",
         "address", "committee", "success", "assessment", "parallel", "engineer", "tomorrow", "cabbage",
         "giraffe", "referee", "possess", "kayak", "level", "hammer", "puppet", "dinner", "butter"]


def count(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    letter = rng.choice(sorted(set(word)) + [rng.choice(LETTERS)])
    return f"Count {letter} in {word}:", str(word.count(letter))


def sort(rng: random.Random) -> tuple[str, str]:
    digits = [str(rng.randrange(10)) for _ in range(rng.randint(3, 4))]
    return f"Sort {' '.join(digits)} ->", " ".join(sorted(digits))


def shift(rng: random.Random) -> tuple[str, str]:
    ls = rng.choices(LETTERS[:25], k=rng.randint(2, 3))  # never z: it has no next
    return f"Shift {' '.join(ls)} ->", " ".join(LETTERS[LETTERS.index(c) + 1] for c in ls)


def letters(rng: random.Random, top: int = 26) -> list[str]:
    return rng.sample(LETTERS[:top], rng.randint(3, 4))


def max_letter(rng: random.Random) -> tuple[str, str]:
    ls = letters(rng)
    return f"Last of {' '.join(ls)}:", max(ls)


def shift_of_max(rng: random.Random) -> tuple[str, str]:
    """Needs two skills: the alphabetically last letter, then shift it."""
    ls = letters(rng, 25)  # never z: it has no next
    return f"Shift last of {' '.join(ls)} ->", LETTERS[LETTERS.index(max(ls)) + 1]


SKILLS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "count": count, "sort": sort, "shift": shift, "max": max_letter,
}
MIXED: dict[str, Callable[[random.Random], tuple[str, str]]] = {"shift_of_max": shift_of_max}
# 5 tasks x 40 = 200 validation examples (as many as the demo's 203), 80 test each
SIZES = dict(n_train=400, val_per_task=40, test_per_task=80)


def make_suite2(out: Path = Path("experts/suite2"), skills: Optional[list[str]] = None,
                log: Callable[[str], None] = print) -> dict:
    from .build import make_suite

    return make_suite(out, SKILLS, MIXED, skills=skills, log=log, **SIZES)
