"""What the pool evaluates: a job, a job that failed for good, and a call (the jobs one
actor evaluates in one round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Job:
    key: Any
    candidate: Any  # a candidates.Candidate (or a coefficient row as its numbers)
    split: str = "val"
    bound: Optional[float] = None  # early exit below this score (None: score fully)


@dataclass(frozen=True)
class Failure:
    reason: str
    attempts: int


def job_arguments(job: Job) -> tuple:
    """The arguments of Evaluator.evaluate for one job."""
    return (job.candidate, job.split, job.bound)


@dataclass
class Call:
    """One `evaluate_many` call waiting on an actor."""

    ref: Any  # the Ray object reference of its result
    jobs: list["Job"]
    head_since: Optional[float]  # when it reached the front of its actor's line (its timeout runs from there)
