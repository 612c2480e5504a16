"""What the cluster's live nodes hold, read from node records as `ray.nodes()` gives them."""

import math

from modelswarm.cluster.nodes import alive, capacity, live_nodes, shape

NODES = [
    {"NodeID": "head", "Alive": True, "Resources": {"CPU": 0.0}},
    {"NodeID": "b", "Alive": False, "Resources": {"CPU": 4.0, "GPU": 1.0}},
    {"NodeID": "c", "Alive": True, "Resources": {"CPU": 3.0, "GPU": 2.0}},
    {"NodeID": "d", "Alive": True, "Resources": {"CPU": 2.0}},
]


def test_capacity_counts_workers_of_the_pool_s_shape_on_live_nodes_only():
    assert capacity(NODES, num_cpus=1, num_gpus=0) == 5
    assert capacity(NODES, num_cpus=1.5, num_gpus=0) == 3
    assert capacity(NODES, num_cpus=1, num_gpus=1) == 2  # c's two GPUs; d has none
    assert capacity(NODES, num_cpus=0, num_gpus=0) == math.inf


def test_a_node_that_joins_or_restarts_under_a_new_id_changes_the_live_set():
    assert live_nodes(NODES) == {"head", "c", "d"}
    assert live_nodes(NODES + [{"NodeID": "b2", "Alive": True}]) != live_nodes(NODES)
    assert alive(NODES, "c") and not alive(NODES, "b") and not alive(NODES, "x")


def test_the_shape_of_a_worker_in_words():
    assert shape(1, 0) == "a worker takes 1 CPU"
    assert shape(2, 0.5) == "a worker takes 2 CPU and 0.5 GPU"
    assert shape(0, 0) == "a worker takes no CPU or GPU"
