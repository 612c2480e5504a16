"""modelswarm vs the paper's reference approach, on the same particles and examples.

    python bench/vs_naive.py --model smollm|tiny [--size 10] [--workers 2]

naive (as BunsenFeng/model_swarm does it, minus its per-iteration process pool, which would
only add to its time): for every particle, write the composed adapter to disk, load the
base model from disk, attach the adapter with PEFT (load_adapter), then generate in
batches of 10 with max_new_tokens=10. Two threads (the whole machine).
modelswarm: the warm actor pool (2 workers x 1 thread), composition in place, batched
and length-sorted evaluation, journal. Pool start-up is reported separately: it is paid
once per run, not per iteration.
"""

from __future__ import annotations

import argparse
import json

from _common import Timer, particle_rows, prepared, tmpdir


def naive_iteration(prep, rows, tmp, threads: int) -> tuple[float, list[float]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from modelswarm.export.particle import export_particle
    from modelswarm.objectives.exact_match import normalise

    torch.set_num_threads(threads)
    cfg = prep.config
    examples = prep.splits["val"]
    scores = []
    with Timer() as t:
        for i, row in enumerate(rows):
            path = tmp / f"particle_{i}"
            export_particle(path, prep.bank, row, cfg.base_model)
            model = AutoModelForCausalLM.from_pretrained(cfg.base_model)
            model.load_adapter(str(path))
            model.eval()
            tok = AutoTokenizer.from_pretrained(cfg.base_model)
            tok.pad_token = tok.eos_token
            tok.padding_side = "left"
            gen = GenerationConfig(max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
            correct = 0
            for b in range(0, len(examples), 10):
                batch = examples[b:b + 10]
                enc = tok([ex["prompt"] for ex in batch], return_tensors="pt", padding=True)
                with torch.no_grad():
                    out = model.generate(**enc, generation_config=gen)
                for ex, o in zip(batch, out):
                    text = tok.decode(o[enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    correct += normalise(text) == normalise(ex["answer"])
            scores.append(correct / len(examples))
    return t.seconds, scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm"], default="smollm")
    ap.add_argument("--size", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from modelswarm.search.evaluations import Evaluations, start_pool
    from modelswarm.run.progress import Progress
    from modelswarm.search.state import RunDir

    tmp = tmpdir()
    prep = prepared(args.model, args.workers, tmp)
    if prep.config.utility.kind != "exact_match":
        raise SystemExit("vs_naive compares generation-based evaluation: use --model smollm")
    rows = particle_rows(len(prep.bank.names), args.size, 2)[1]  # one iteration's proposals

    rd = RunDir(tmp / "run")
    rd.path.mkdir(parents=True)
    evals = Evaluations(rd, lambda: start_pool(prep), Progress(prep.bank.names, 0, live=False))
    with Timer() as startup:
        evals.pool
    with Timer() as ours:
        results = evals.score(rows, iteration=1)
    evals.shutdown()

    naive_s, naive_scores = naive_iteration(prep, rows, tmp, threads=args.workers)
    print(json.dumps({
        "model": args.model, "particles": args.size, "examples": len(prep.splits["val"]),
        "modelswarm_iteration_s": round(ours.seconds, 2), "modelswarm_pool_startup_s": round(startup.seconds, 2),
        "naive_iteration_s": round(naive_s, 2),
        "speedup": round(naive_s / ours.seconds, 2),
        "speedup_including_startup": round(naive_s / (ours.seconds + startup.seconds), 2),
        "scores_modelswarm": [round(r.score, 4) for r in results],
        "scores_naive": [round(s, 4) for s in naive_scores],
    }, indent=2))


if __name__ == "__main__":
    main()
