"""The offline demo: SmolLM2-135M-Instruct, six LoRA specialists, a mixed-skill swarm."""
