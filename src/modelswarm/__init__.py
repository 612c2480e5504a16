"""modelswarm: compose LLM experts by particle-swarm search in weight space."""

__version__ = "0.1.0"

# Set for the CLI and every Ray worker: never reach for a model hub, and keep libraries quiet.
OFFLINE_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}
