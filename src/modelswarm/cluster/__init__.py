"""The Ray pool: evaluator actors, jobs dispatched to them, the cluster's nodes."""
