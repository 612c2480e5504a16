"""A python utility for fault tests; copied next to the test's config so workers import it.

Its score is a deterministic function of the composed weights (the sum of all lora_B
entries). Directives ride on the first validation example:
  sleep: seconds per evaluation (so a test can kill a worker mid-evaluation)
  bad: [weight sums] particles with these sums fail every time, by `mode`:
       raise (an exception) or exit (the worker process dies)
  nan: return NaN for everything
  hold: a path; while that file exists, every evaluation waits, touching `<hold>.<pid>` (so
       a test sees which workers are evaluating)
"""

import os
import time


def lora_b_sum(model) -> float:
    return float(sum(p.double().sum() for n, p in model.named_parameters() if "lora_B" in n))


def score(model, tokenizer, examples):
    ctl = examples[0]
    value = lora_b_sum(model)
    if ctl.get("nan"):
        return float("nan")
    if any(abs(value - b) < 1e-6 for b in ctl.get("bad", [])):
        if ctl.get("mode") == "exit":
            os._exit(1)
        raise RuntimeError("this particle always fails")
    while ctl.get("hold") and os.path.exists(ctl["hold"]):
        open(f"{ctl['hold']}.{os.getpid()}", "w").close()
        time.sleep(0.05)
    time.sleep(ctl.get("sleep", 0.0))
    return value
