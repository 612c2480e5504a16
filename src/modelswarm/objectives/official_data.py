"""`modelswarm data import-official FILE.json OUT_DIR`: the official repo's data files as our JSONL.

The official code (github BunsenFeng/model_swarm, data/eval/*.json) keeps each task in one
JSON object: {"dataset": name, "dev": [...], "test": [...], "icl_prompt"?: str}. Its items
are one of three shapes, told apart by their fields:

  multiple choice  {"question", "choices": {"A": text, ...}, "answer": "A"}  (mmlu, medqa, hearsay, ...)
  exact match      {"question", "answer": str}                              (gsm8k, nlgraph)
  prompt only      {"prompt"}                                               (rm, human_*, realtoxicityprompts)

The import writes dev.jsonl (our validation split: `utility.data`) and test.jsonl
(`utility.test_data`) into OUT_DIR, one line per item, so the paper's tasks run unchanged:

  multiple choice -> {"question", "choices": [text, ...], "labels": ["A", ...], "answer": index,
                      "prompt": the official prompt}   for multiple_choice (either scoring)
  exact match     -> {"prompt": question, "answer": str}          for exact_match
  prompt only     -> {"prompt": str}                               for reward_model and llm_judge

"prompt" of a multiple-choice item is what the official `multiple_choice_prompt` builds
(evaluate.py): the instruction ("Please choose an option that best answers the question.",
the hellaswag and knowledge_crosswords variants), "Question: ...", one "A: text" line per
option, "The answer is", with the file's icl_prompt in front for knowledge_crosswords.
`multiple_choice` with `scoring: generate` reads it; log-likelihood scoring uses "question"
and "choices". Other fields of an item (id, domain) ride along.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError

SPLITS = {"dev": "dev.jsonl", "test": "test.jsonl"}


def official_mc_prompt(question: str, choices: dict[str, str], dataset: str = "",
                       icl_prompt: Optional[str] = None) -> str:
    """The official `multiple_choice_prompt` (evaluate.py), character for character."""
    prompt = "Question: " + question + "\n"
    if dataset == "knowledge_crosswords":
        pass
    elif dataset == "hellaswag":
        prompt = "Please choose an option that best completes the sentence.\n" + prompt
    else:
        prompt = "Please choose an option that best answers the question.\n" + prompt
    for key, text in choices.items():
        prompt += key + ": " + text + "\n"
    prompt += "The answer is"
    if dataset == "knowledge_crosswords" and icl_prompt is not None:
        prompt = icl_prompt + "\n" + prompt
    return prompt


def convert_item(item: Any, dataset: str, icl_prompt: Optional[str], where: str) -> dict[str, Any]:
    """One official item as one of our JSONL objects (see the module docstring)."""
    if not isinstance(item, dict):
        raise UserError(where, "each item must be a JSON object")
    rest = {k: v for k, v in item.items() if k not in ("question", "choices", "answer", "prompt")}
    if "choices" in item:
        choices, answer, question = item["choices"], item.get("answer"), item.get("question")
        if not isinstance(question, str) or not question.strip():
            raise UserError(where, "field 'question' must be a non-empty string")
        if (not isinstance(choices, dict) or len(choices) < 2
                or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in choices.items())):
            raise UserError(where, "field 'choices' must map at least 2 option keys to non-empty strings")
        if answer not in choices:
            raise UserError(where, f"answer {answer!r} is not one of the option keys {list(choices)}")
        return {"question": question, "choices": list(choices.values()), "labels": list(choices),
                "answer": list(choices).index(answer),
                "prompt": official_mc_prompt(question, choices, dataset, icl_prompt), **rest}
    if "question" in item and "answer" in item:
        question, answer = item["question"], item["answer"]
        if not isinstance(question, str) or not question.strip():
            raise UserError(where, "field 'question' must be a non-empty string")
        if not isinstance(answer, (str, int, float)) or isinstance(answer, bool) or not str(answer).strip():
            raise UserError(where, f"field 'answer' must be a non-empty string or number, got {answer!r}")
        return {"prompt": question, "answer": str(answer), **rest}
    if isinstance(item.get("prompt"), str) and item["prompt"].strip():
        return {"prompt": item["prompt"], **rest}
    raise UserError(where, "an item needs 'question' and 'choices' (multiple choice), 'question' and "
                           "'answer' (exact match), or 'prompt'")


def import_official(path: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write OUT_DIR/dev.jsonl and OUT_DIR/test.jsonl; returns the item count per file.
    Everything is checked before anything is written."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(path, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UserError(path, "the official format is a JSON object with 'dev' and 'test' lists")
    dataset = data.get("dataset") if isinstance(data.get("dataset"), str) else path.stem
    icl = data.get("icl_prompt")
    if icl is not None and not isinstance(icl, str):
        raise UserError(f"{path}: icl_prompt", "must be a string")
    out: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        items = data.get(split)
        if not isinstance(items, list) or not items:
            raise UserError(f"{path}: {split}", "missing or empty: the official format has 'dev' and 'test' lists")
        out[split] = [convert_item(item, dataset, icl, f"{path}: {split}[{i}]") for i, item in enumerate(items)]
    shapes = {split: {_shape(r) for r in rows} for split, rows in out.items()}
    if len(set().union(*shapes.values())) > 1:
        raise UserError(path, f"items of different shapes in one file: {sorted(set().union(*shapes.values()))}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, name in SPLITS.items():
        with open(out_dir / name, "w", encoding="utf-8") as f:
            for row in out[split]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {SPLITS[s]: len(rows) for s, rows in out.items()}


def _shape(row: dict) -> str:
    return "multiple choice" if "choices" in row else "exact match" if "answer" in row else "prompt only"


def suggested_kind(out_dir: str | Path) -> str:
    """The utility kind the imported files are for (for the CLI's closing line)."""
    with open(Path(out_dir) / SPLITS["dev"], encoding="utf-8") as f:
        row = json.loads(f.readline())
    return {"multiple choice": "multiple_choice", "exact match": "exact_match",
            "prompt only": "reward_model or llm_judge"}[_shape(row)]
