"""A suite scored by `multiple_choice`: the swarm is judged by which choice a mix likes best,
not by what it generates.

Four skills and one task that needs two of them (question -> the right choice):
  prev    "Before d k ->"          -> "c j"   each letter to the one before it
  min     "First of q c f h:"      -> "c"     the alphabetically first letter
  upper   "Upper q c f ->"         -> "Q C F" the letters in capitals
  bigger  "Bigger of 347 and 512:" -> "512"   the larger number
  prev_of_min  "Before first of q c f h:" -> "b"   min, then prev
Validation and test lines are {question, choices, answer (index), task}: four choices, the
right one among near misses that a wrong skill would pick (prev_of_min offers the first
letter itself, what the min expert says; the next letter, what a shift would say; and the
letter before the last one). The experts come from the one trainer, on {prompt, answer}
files where the answer is the right choice's text, which is what the utility's
log-likelihood of " " + choice reads (build.make_suite's eval_row). Sizes as suite2;
`modelswarm experts make-suite4` writes experts/suite4. Not used to choose the search
defaults: a held-out suite (README: Compare)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Optional

from .tasks import LETTERS

N_CHOICES = 4
MIDDLE = LETTERS[2:25]  # c..y: two letters before and one after always exist


def prev_letter(c: str, k: int = 1) -> str:
    return LETTERS[LETTERS.index(c) - k]


def prev(rng: random.Random) -> tuple[str, str]:
    ls = rng.choices(MIDDLE, k=rng.randint(2, 3))
    return f"Before {' '.join(ls)} ->", " ".join(prev_letter(c) for c in ls)


def min_letter(rng: random.Random) -> tuple[str, str]:
    ls = rng.sample(LETTERS, 4)
    return f"First of {' '.join(ls)}:", min(ls)


def upper(rng: random.Random) -> tuple[str, str]:
    ls = rng.choices(LETTERS, k=rng.randint(2, 3))
    return f"Upper {' '.join(ls)} ->", " ".join(ls).upper()


def bigger(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(100, 1000), 2)
    return f"Bigger of {a} and {b}:", str(max(a, b))


def prev_of_min(rng: random.Random) -> tuple[str, str]:
    """Needs two skills: the alphabetically first letter, then the one before it."""
    ls = rng.sample(MIDDLE, 4)
    return f"Before first of {' '.join(ls)}:", prev_letter(min(ls))


def listed(question: str) -> list[str]:
    """The letters or numbers a question lists (between its verb phrase and its ':' / '->')."""
    body = question.rsplit("->", 1)[0].rstrip(":").split()
    return [w for w in body if len(w) == 1 and w.islower() or w.isdigit()]


def near_misses(task: str, question: str, answer: str) -> list[str]:
    """Wrong choices, most telling first: what a neighbouring skill or a slip would answer."""
    items = listed(question)
    if task == "prev":
        return [" ".join(LETTERS[LETTERS.index(c) + 1] for c in items), " ".join(items),
                " ".join(prev_letter(c, 2) for c in items)]
    if task == "min":
        return [c for c in items if c != answer]
    if task == "upper":
        return [" ".join(items), " ".join([c.upper() for c in items[:-1]] + items[-1:]),
                " ".join(reversed(items)).upper()]
    if task == "bigger":
        a, b = (int(x) for x in items)
        return [str(min(a, b)), str(a + b), str(abs(a - b))]
    if task == "prev_of_min":
        first = min(items)
        return [first, LETTERS[LETTERS.index(first) + 1], prev_letter(max(items))]
    raise KeyError(task)


def to_choices(row: dict) -> dict:
    """A {prompt, answer, task} row as a multiple_choice line: the answer among four choices, in
    an order drawn from the question (so the same question always gets the same line)."""
    task, question, answer = row["task"], row["prompt"], row["answer"]
    rng = random.Random(f"{task}:{question}")
    wrong = []
    for c in near_misses(task, question, answer):
        if c != answer and c not in wrong:
            wrong.append(c)
    while len(wrong) < N_CHOICES - 1:  # a near miss coincided with another: fill with a letter or number
        c = str(rng.randrange(100, 1000)) if task == "bigger" else rng.choice(LETTERS)
        c = c.upper() if task == "upper" else c
        if c != answer and c not in wrong:
            wrong.append(c)
    choices = wrong[:N_CHOICES - 1] + [answer]
    rng.shuffle(choices)
    return {"question": question, "choices": choices, "answer": choices.index(answer), "task": task}


SKILLS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "prev": prev, "min": min_letter, "upper": upper, "bigger": bigger,
}
MIXED: dict[str, Callable[[random.Random], tuple[str, str]]] = {"prev_of_min": prev_of_min}
SIZES = dict(n_train=400, val_per_task=40, test_per_task=80)  # as suite2: 200 validation, 400 test
EVALUATION = dict(kind="multiple_choice", batch_sequences=64, chat_template="off")


def make_suite4(out: Path = Path("experts/suite4"), skills: Optional[list[str]] = None,
                log: Callable[[str], None] = print) -> dict:
    from .build import make_suite

    return make_suite(out, SKILLS, MIXED, skills=skills, log=log, evaluation=EVALUATION, eval_row=to_choices,
                      **SIZES)
