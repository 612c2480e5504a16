"""The end of a run in numbers: baselines, outcomes, analyses, summary.json, utility.png."""
