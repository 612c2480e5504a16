"""modelswarm on an existing Ray cluster: two nodes started with the ray CLI on this machine."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import write_config

pytestmark = pytest.mark.slow
PORT = 6397


def ray_cli(*args, env):
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    return subprocess.run([ray_bin, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def two_node_cluster():
    """A head and a second node, one CPU each, with resources that tell them apart."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # token authentication, as Ray >= 2.59 wants it: one secret for every node and the driver
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    # a cluster of its own, in a short path: Ray's unix sockets allow 107 bytes
    ray_tmp = tempfile.mkdtemp(prefix="msr", dir="/tmp")
    env["RAY_TMPDIR"] = ray_tmp
    head = ray_cli("start", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false",
                   '--resources={"node_a": 1}', f"--temp-dir={ray_tmp}", env=env)
    assert head.returncode == 0, head.stderr
    try:
        second = ray_cli("start", f"--address=127.0.0.1:{PORT}", "--num-cpus=1", '--resources={"node_b": 1}', env=env)
        assert second.returncode == 0, second.stderr
        yield f"127.0.0.1:{PORT}", env
    finally:
        ray_cli("stop", "--force", env=env)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_swarm_runs_with_workers_on_both_nodes(world, two_node_cluster, tmp_path):
    address, env = two_node_cluster
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="cluster",
                       swarm={"size": 4, "max_iterations": 2}, workers={"count": 2, "num_cpus": 1})
    r = subprocess.run([sys.executable, "-m", "modelswarm.cli", "run", str(cfg), "--address", address, "--no-live"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    journal = [json.loads(l) for l in (tmp_path / "runs" / "cluster" / "evaluations.jsonl").read_text().splitlines()]
    nodes = {e["worker"].split("/")[0] for e in journal if e["worker"]}
    assert len(nodes) == 2, f"expected workers on two nodes, got {nodes}"
    assert (tmp_path / "runs" / "cluster" / "best" / "adapter_model.safetensors").is_file()
