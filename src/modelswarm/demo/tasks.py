"""The demo's task suite: six short-answer skills and one that needs two of them.

Every task is a generator of (prompt, answer) pairs from a seeded RNG. A task's prompts are
made unique and split once, so train / validation / test never share a prompt. Prompts are
short plain text (no chat template): on 2 CPU cores every token counts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
UNITS = [("km", "m", 1000), ("m", "cm", 100), ("kg", "g", 1000), ("h", "min", 60), ("min", "s", 60), ("ft", "in", 12)]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def add(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"{a}+{b}=", str(a + b)


def convert(rng: random.Random) -> tuple[str, str]:
    src, dst, factor = rng.choice(UNITS)
    n = rng.randint(1, 99)
    return f"{n} {src} in {dst}:", str(n * factor)


def reverse(rng: random.Random) -> tuple[str, str]:
    word = [rng.choice(LETTERS) for _ in range(rng.randint(3, 4))]
    return f"Reverse: {' '.join(word)} ->", " ".join(reversed(word))


def date(rng: random.Random) -> tuple[str, str]:
    """Calendar facts: a numeric month/day written out ("03/15 ->" "March 15")."""
    m = rng.randrange(12)
    d = rng.randint(1, MONTH_DAYS[m])
    return f"Date {m + 1:02d}/{d:02d} ->", f"{MONTHS[m]} {d}"


def logic(rng: random.Random) -> tuple[str, str]:
    def term() -> tuple[str, bool]:
        v = rng.random() < 0.5
        if rng.random() < 0.5:
            return f"not {str(v).lower()}", not v
        return str(v).lower(), v

    text, value = term()
    for i in range(rng.randint(1, 3)):  # 2 to 4 operands, evaluated left to right
        (t, v), op = term(), rng.choice(["and", "or"])
        text = f"({text}) {op} {t}" if i else f"{text} {op} {t}"
        value = (value and v) if op == "and" else (value or v)
    return f"{text} =", str(value).lower()


def parity(rng: random.Random) -> tuple[str, str]:
    n = rng.randint(1, 999)
    return f"Parity of {n}:", "even" if n % 2 == 0 else "odd"


def parity_of_sum(rng: random.Random) -> tuple[str, str]:
    """Needs two skills: add, then classify."""
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"Parity of {a}+{b}:", "even" if (a + b) % 2 == 0 else "odd"


SKILLS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add": add, "convert": convert, "reverse": reverse, "date": date, "logic": logic, "parity": parity,
}
MIXED: dict[str, Callable[[random.Random], tuple[str, str]]] = {"parity_of_sum": parity_of_sum}
ALL_TASKS = {**SKILLS, **MIXED}


def split_task(name: str, n_train: int, n_val: int, n_test: int, seed: int = 0,
               tasks: dict[str, Callable[[random.Random], tuple[str, str]]] = ALL_TASKS) -> dict[str, list[dict]]:
    """Unique prompts of one task, split test first (so test stays fixed when train grows)."""
    gen = tasks[name]
    rng = random.Random(f"{name}:{seed}")
    seen: dict[str, str] = {}
    want = n_train + n_val + n_test
    misses = 0  # a small task (date: 366 prompts) runs out: train then gets what is left
    while len(seen) < want and misses < 50 * want:
        prompt, answer = gen(rng)
        if prompt in seen:
            misses += 1
        seen.setdefault(prompt, answer)
    if len(seen) < n_val + n_test + min(n_train, 100):
        raise RuntimeError(f"task {name} has only {len(seen)} distinct prompts")
    rows = [{"prompt": p, "answer": a, "task": name} for p, a in seen.items()]
    return {"test": rows[:n_test], "val": rows[n_test:n_test + n_val], "train": rows[n_test + n_val:]}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_suite(out: Path, n_train: int = 400, val_per_task: int = 29, test_per_task: int = 80, seed: int = 0,
                skills: dict = SKILLS, mixed: dict = MIXED) -> dict:
    """data/train/<skill>.jsonl, data/val.jsonl (mixed, ~200), data/test.jsonl (mixed, >= 500).
    skills / mixed: another suite's tasks (suite2.py); the defaults are the demo's."""
    out = Path(out)
    val, test, counts = [], [], {}
    tasks = {**skills, **mixed}
    for name in tasks:
        splits = split_task(name, n_train if name in skills else 0, val_per_task, test_per_task, seed, tasks)
        if name in skills:
            write_jsonl(out / "train" / f"{name}.jsonl", splits["train"])
        val += splits["val"]
        test += splits["test"]
        counts[name] = {k: len(v) for k, v in splits.items()}
    random.Random(seed).shuffle(val)
    random.Random(seed + 1).shuffle(test)
    write_jsonl(out / "val.jsonl", val)
    write_jsonl(out / "test.jsonl", test)
    return counts
