"""modelswarm on an existing Ray cluster: nodes started with the ray CLI on this machine."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import write_config

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A Ray cluster of several raylets on this machine. Every port is a free one and the
    cluster lives in a temporary directory of its own, so it neither meets nor stops any
    other Ray on the machine (`ray stop` would stop them all)."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        # token authentication, as Ray >= 2.59 wants it: one secret for every node and the driver
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # a node whose raylet stops answering is declared dead after about 5 s (Ray's
        # defaults take several times longer)
        env["RAY_health_check_initial_delay_ms"] = "1000"
        env["RAY_health_check_period_ms"] = "1000"
        env["RAY_health_check_timeout_ms"] = "2000"
        env["RAY_health_check_failure_threshold"] = "5"
        # a short path: Ray's unix sockets allow 107 bytes
        self.tmp = tempfile.mkdtemp(prefix="msr", dir="/tmp")
        env["RAY_TMPDIR"] = self.tmp
        self.env = env
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.node_ports: dict[str, int] = {}

    def ray(self, *args: str) -> None:
        ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
        r = subprocess.run([ray_bin, *args, "--disable-usage-stats", f"--metrics-export-port={free_port()}",
                            f"--dashboard-agent-listen-port={free_port()}"],
                           capture_output=True, text=True, timeout=300, env=self.env)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    def start_head(self, num_cpus: int, resources: str = "{}") -> None:
        self.ray("start", "--head", f"--port={self.port}", f"--num-cpus={num_cpus}", f"--resources={resources}",
                 "--include-dashboard=false", f"--dashboard-port={free_port()}",
                 f"--ray-client-server-port={free_port()}", f"--temp-dir={self.tmp}")

    def add_node(self, name: str, num_cpus: int = 1) -> None:
        self.node_ports[name] = free_port()
        self.ray("start", f"--address={self.address}", f"--num-cpus={num_cpus}",
                 f"--node-manager-port={self.node_ports[name]}", f'--resources={{"node_{name}": 1}}')

    def kill_node(self, name: str) -> None:
        """The node dies at once: SIGKILL to its raylet and every process under it (its
        workers and agents)."""
        import psutil

        flag = f"--node_manager_port={self.node_ports[name]}"
        raylet = next(p for p in psutil.process_iter(["cmdline"]) if flag in (p.info["cmdline"] or []))
        for p in [raylet, *raylet.children(recursive=True)]:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass

    def stop(self) -> None:
        import psutil

        ours = []
        for p in psutil.process_iter(["cmdline"]):
            if any(self.tmp in arg for arg in p.info["cmdline"] or []):
                try:
                    ours += [p, *p.children(recursive=True)]
                except psutil.Error:
                    pass
        for p in ours:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(ours, timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def cluster():
    c = LocalCluster()
    try:
        yield c
    finally:
        c.stop()


def cli(*args, env, **kw):
    return subprocess.run([sys.executable, "-m", "modelswarm.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env, **kw)


def journal(run_dir: Path) -> list[dict]:
    text = (run_dir / "evaluations.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(l) for l in text.splitlines()]


def test_a_swarm_runs_with_workers_on_both_nodes(world, cluster, tmp_path):
    cluster.start_head(1, '{"node_a": 1}')
    cluster.add_node("b")
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="cluster",
                       swarm={"size": 4, "max_iterations": 2}, workers={"count": 2, "num_cpus": 1})
    r = cli("run", cfg, "--address", cluster.address, "--no-live", env=cluster.env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    nodes = {e["worker"].split("/")[0] for e in journal(tmp_path / "runs" / "cluster") if e["worker"]}
    assert len(nodes) == 2, f"expected workers on two nodes, got {nodes}"
    assert (tmp_path / "runs" / "cluster" / "best" / "adapter_model.safetensors").is_file()


def wait_for_lines(proc: subprocess.Popen, run_dir: Path, n: int, timeout: float = 300) -> int:
    path = run_dir / "evaluations.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") >= n:
            return path.read_text().count("\n")
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before {n} evaluations (exit {proc.poll()})")


def test_a_lost_node_shrinks_the_pool_and_no_room_left_stops_the_run_resumably(world, cluster, tmp_path):
    """Workers on nodes b and c (the head has no CPU for them). Node b dies mid-run: its
    evaluations are redone on c, the pool shrinks to one, and the run ends in the state of an
    undisturbed run. A second run starts with the one worker c can hold; c dies too: exit 2,
    the state saved, the resume command printed; a node joins and `resume` ends it in the
    same state."""
    cluster.start_head(0)
    cluster.add_node("b")
    cluster.add_node("c")
    shutil.copy(HERE / "flaky_utility.py", tmp_path / "flaky_utility.py")
    ctl = tmp_path / "ctl.jsonl"
    ctl.write_text(json.dumps({"sleep": 0.3}) + "\n")  # every evaluation takes a while: a kill lands mid-way
    over = dict(utility={"kind": "python", "data": str(ctl), "function": "flaky_utility:score", "test_data": None},
                swarm={"size": 4, "max_iterations": 4, "patience": 4}, workers={"count": 2, "num_cpus": 1})
    runs = tmp_path / "runs"

    def start(name: str) -> tuple[subprocess.Popen, Path, Path]:
        cfg = write_config(tmp_path / f"{name}.yaml", world, runs, name=name, **over)
        out = tmp_path / f"{name}.out"
        proc = subprocess.Popen([sys.executable, "-m", "modelswarm.cli", "run", str(cfg), "--address",
                                 cluster.address, "--no-live"], stdout=open(out, "w"),
                                stderr=open(tmp_path / f"{name}.err", "w"), env=cluster.env)
        return proc, runs / name, out

    def said(name: str) -> str:
        return (tmp_path / f"{name}.out").read_text()[-2000:] + (tmp_path / f"{name}.err").read_text()[-3000:]

    proc, ref_dir, _ = start("ref")
    assert proc.wait(timeout=600) == 0, said("ref")
    ref_state = json.loads((ref_dir / "state.json").read_text())["swarm"]
    ref_summary = json.loads((ref_dir / "summary.json").read_text())
    ref_hashes = sorted(e["hash"] for e in journal(ref_dir))

    # node b dies while both workers evaluate
    proc, run_dir, out = start("lost")
    at_kill = wait_for_lines(proc, run_dir, 3)
    cluster.kill_node("b")
    assert proc.wait(timeout=600) == 0, said("lost")
    printed = out.read_text()
    assert "lost the node" in printed and "the cluster can place 1 of 2 workers: the pool goes on with 1" in printed
    lines = journal(run_dir)
    assert not [e for e in lines if e["error"]]  # nothing failed for good
    assert sorted(e["hash"] for e in lines) == ref_hashes  # each evaluation once: the lost ones redone
    assert len({e["worker"].split("/")[0] for e in lines[at_kill + 2:]}) == 1  # after the kill: node c only
    assert json.loads((run_dir / "state.json").read_text())["swarm"] == ref_state
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("best", "top_k", "history", "iterations", "personal_bests"):
        assert summary[key] == ref_summary[key], key

    # only c is left: the pool starts with one worker; then c dies too
    proc, run_dir, out = start("gone")
    wait_for_lines(proc, run_dir, 7)  # the initial swarm is scored and saved, iteration 1 under way
    cluster.kill_node("c")
    assert proc.wait(timeout=600) == 2, said("gone")
    err = (tmp_path / "gone.err").read_text().strip().splitlines()
    assert err[-1] == (f"modelswarm: error: {run_dir}: no worker is left, and no live node has room for one "
                       "(a worker takes 1 CPU): the run is saved up to its last complete iteration; once the "
                       f"cluster has room again, resume with `modelswarm resume {run_dir}`"), said("gone")
    assert "the cluster can place 1 of 2 workers" in out.read_text()
    assert not (run_dir / "lock").exists() and not (run_dir / "best").exists()
    stopped = json.loads((run_dir / "state.json").read_text())["swarm"]
    assert stopped["iteration"] < ref_state["iteration"]
    journal(run_dir)  # complete lines only

    cluster.add_node("d")
    r = cli("resume", run_dir, "--address", cluster.address, "--no-live", env=cluster.env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert json.loads((run_dir / "state.json").read_text())["swarm"] == ref_state
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("best", "top_k", "history", "iterations", "personal_bests"):
        assert summary[key] == ref_summary[key], key


def test_a_node_that_joins_after_a_loss_brings_the_pool_back_to_full_size(world, cluster, tmp_path):
    """Workers on nodes b and c. Node b dies mid-run and the pool shrinks to one; node d
    joins: the pool grows back to two, with a line saying so, and d's worker takes work. The
    run ends in the state of an undisturbed run."""
    cluster.start_head(0)
    cluster.add_node("b")
    cluster.add_node("c")
    shutil.copy(HERE / "flaky_utility.py", tmp_path / "flaky_utility.py")
    hold = tmp_path / "hold"  # while it exists, every evaluation waits (the run cannot end before d is up)
    ctl = tmp_path / "ctl.jsonl"
    ctl.write_text(json.dumps({"sleep": 0.3, "hold": str(hold)}) + "\n")
    over = dict(utility={"kind": "python", "data": str(ctl), "function": "flaky_utility:score", "test_data": None},
                swarm={"size": 8, "max_iterations": 3, "patience": 3}, workers={"count": 2, "num_cpus": 1})
    runs = tmp_path / "runs"

    def start(name: str) -> tuple[subprocess.Popen, Path, Path]:
        cfg = write_config(tmp_path / f"{name}.yaml", world, runs, name=name, **over)
        out = tmp_path / f"{name}.out"
        proc = subprocess.Popen([sys.executable, "-m", "modelswarm.cli", "run", str(cfg), "--address",
                                 cluster.address, "--no-live"], stdout=open(out, "w"),
                                stderr=open(tmp_path / f"{name}.err", "w"), env=cluster.env)
        return proc, runs / name, out

    def said(name: str) -> str:
        return (tmp_path / f"{name}.out").read_text()[-2000:] + (tmp_path / f"{name}.err").read_text()[-3000:]

    def wait_for(proc: subprocess.Popen, what: Callable[[], bool], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert proc.poll() is None and time.monotonic() < deadline, said("back")
            time.sleep(0.05)

    proc, ref_dir, _ = start("ref")
    assert proc.wait(timeout=600) == 0, said("ref")
    ref_state = json.loads((ref_dir / "state.json").read_text())["swarm"]
    ref_summary = json.loads((ref_dir / "summary.json").read_text())

    proc, run_dir, out = start("back")
    at_kill = wait_for_lines(proc, run_dir, 3)  # several of the first 8 evaluations left: work for d too
    hold.touch()
    cluster.kill_node("b")
    wait_for(proc, lambda: "the pool goes on with 1" in out.read_text())
    for marker in tmp_path.glob("hold.*"):  # the held evaluations mark their worker's pid
        marker.unlink()
    cluster.add_node("d")
    wait_for(proc, lambda: "the pool grows to 2 of 2 workers" in out.read_text())
    wait_for(proc, lambda: len(list(tmp_path.glob("hold.*"))) == 2)  # c's worker and d's are evaluating
    released = len(journal(run_dir))
    hold.unlink()
    assert proc.wait(timeout=600) == 0, said("back")

    lines = journal(run_dir)
    assert not [e for e in lines if e["error"]]
    before = {e["worker"].split("/")[0] for e in lines[:at_kill]}
    after = {e["worker"].split("/")[0] for e in lines[released:]}
    assert len(after) == 2 and after - before, f"after d joined, workers on {after}; before the kill, {before}"
    assert json.loads((run_dir / "state.json").read_text())["swarm"] == ref_state
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("best", "top_k", "history", "iterations", "personal_bests"):
        assert summary[key] == ref_summary[key], key
