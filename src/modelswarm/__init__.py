"""modelswarm: compose LLM experts by particle-swarm search in weight space."""

__version__ = "0.1.0"
