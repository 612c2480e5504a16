"""The batching policy: how many jobs travel to an actor in one call, and when a second
call waits on it (pure; the pool's runs use it as dispatch.py asks)."""

import collections
import math

from modelswarm.cluster.batching import Batching, take, typical_s
from modelswarm.cluster.jobs import Job

POLICY = Batching(prefetch_below_s=1.0, chunk_target_s=0.05)


def jobs(n: int) -> collections.deque:
    return collections.deque(Job(i, (float(i),)) for i in range(n))


def test_before_any_evaluation_jobs_go_one_at_a_time_and_none_waits_ahead():
    assert typical_s([]) == math.inf
    assert POLICY.call_size(typical_s([]), queued=100, waiting_all=0, waiting_here=0, ready=2) == 1
    assert not POLICY.queue_ahead(typical_s([]))


def test_the_typical_duration_is_the_mean_of_the_latest():
    assert typical_s([0.01, 0.03]) == 0.02


def test_short_evaluations_give_each_actor_its_fair_share_and_the_first_served_no_more():
    queue, short = jobs(8), typical_s([0.001] * 8)
    first = take(queue, POLICY.call_size(short, queued=8, waiting_all=0, waiting_here=0, ready=2), set())
    second = take(queue, POLICY.call_size(short, queued=4, waiting_all=4, waiting_here=0, ready=2), set())
    assert [j.key for j in first] == [0, 1, 2, 3] and [j.key for j in second] == [4, 5, 6, 7]
    assert POLICY.queue_ahead(short)


def test_a_call_holds_about_chunk_target_s_of_evaluations():
    # 0.05 s of 10 ms evaluations: 5, however many jobs wait
    assert POLICY.call_size(0.01, queued=1000, waiting_all=0, waiting_here=0, ready=2) == 5


def test_an_actor_with_its_share_already_waiting_gets_one_job():
    assert POLICY.call_size(0.001, queued=4, waiting_all=4, waiting_here=4, ready=2) == 1


def test_long_evaluations_go_alone_and_nothing_waits_ahead():
    assert POLICY.call_size(2.0, queued=100, waiting_all=0, waiting_here=0, ready=2) == 1
    assert not POLICY.queue_ahead(2.0)


def test_a_job_that_failed_before_goes_alone_and_ends_the_call_before_it():
    queue = jobs(6)
    assert [j.key for j in take(queue, 4, solo={2})] == [0, 1]
    assert [j.key for j in take(queue, 4, solo={2})] == [2]
    assert [j.key for j in take(queue, 4, solo={2})] == [3, 4, 5]


def test_a_call_takes_no_more_than_the_queue_holds():
    queue = jobs(2)
    assert len(take(queue, 5, set())) == 2 and not queue
