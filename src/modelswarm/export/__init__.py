"""What leaves a run: a particle as a checkpoint with its card and provenance, lm-eval tasks,
and the checkpoint re-scored (verify)."""
