"""The search's own state: the swarm, the run directory and its journal, the evaluations cache."""
