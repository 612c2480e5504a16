#!/usr/bin/env bash
# The GPU path in one go. Prints one JSON object on stdout; progress goes to stderr.
#
#   bench/gpu.sh                  # a CUDA machine: CUDA tests, the SmolLM2 demo on cuda, evals/s
#   bench/gpu.sh --device cpu     # a dry run anywhere: the tiny model, 2 iterations; the CUDA tests skip
#
# What it runs (bench/gpu.py):
#   1. the CUDA-marked tests, tests/test_cuda.py: composition, trie scoring and greedy
#      decoding against the plain paths (generate), on cuda, in float32 and bfloat16
#   2. the demo swarm with workers.device: cuda (one worker, the whole GPU)
#   3. evaluations per second with 1, 2 and 4 actors sharing one GPU (num_gpus 1, 1/2, 1/4)
# Options: --model tiny|smollm (default smollm on cuda, tiny on cpu), --dtype float32|bfloat16
# (demo and rates), --iterations N (demo), --size N and --rate-iterations N (rates),
# --skip tests|demo|rates. The SmolLM2 demo needs the demo extra: pip install -e '.[demo]'.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" bench/gpu.py "$@"
