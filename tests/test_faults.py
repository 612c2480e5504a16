"""Faults of shared machines: two processes on one run directory, a full disk."""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelswarm.config import load_config
from modelswarm.run.prepare import prepare
from modelswarm.run.coordinator import run_swarm
from modelswarm.errors import UserError
from modelswarm.search.lock import RunLock
from modelswarm.search.state import RunDir

from conftest import write_config

HERE = Path(__file__).parent


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "modelswarm.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lock_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "lock").read_text())


# --- two processes on one run directory ---------------------------------------------------


@pytest.mark.slow
def test_a_second_process_on_a_live_run_directory_exits_2_naming_the_owner(world, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="busy")
    run_dir = tmp_path / "runs" / "busy"
    RunDir(run_dir).create(load_config(cfg), ("down", "same", "up"), ("a", "b", "c"))
    with RunLock(run_dir):  # this test process is the live owner
        owner = f"{socket.gethostname()}:{os.getpid()}"
        for args in (["resume", run_dir, "--no-live"], ["run", cfg, "--resume", "--no-live"]):
            r = cli(*args)
            assert r.returncode == 2, r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1, r.stderr
            assert f"{run_dir}/lock: the run directory is in use by modelswarm {owner}" in lines[0]
        assert lock_record(run_dir)["pid"] == os.getpid()  # still ours
    assert not (run_dir / "lock").exists()  # released on leaving the block
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "experts.json"]  # nothing was written


def test_a_stale_lock_of_a_dead_process_on_this_host_is_taken_over_with_a_message(tmp_path):
    pid = dead_pid()
    (tmp_path / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "earlier"}))
    said = []
    with RunLock(tmp_path, notify=said.append):
        assert lock_record(tmp_path)["pid"] == os.getpid()
    assert said == [f"{tmp_path}/lock: took over the lock of {socket.gethostname()}:{pid} (since earlier): "
                    "that process is gone"]
    assert not (tmp_path / "lock").exists()


def test_a_reused_pid_does_not_keep_a_stale_lock_alive(tmp_path):
    # the pid is alive (this very process), but it started at another time than the owner did
    (tmp_path / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                               "started": "earlier", "start_ticks": "1"}))
    said = []
    with RunLock(tmp_path, notify=said.append):
        assert lock_record(tmp_path)["start_ticks"] != "1"
    assert len(said) == 1 and "took over" in said[0]


def test_a_lock_held_on_another_host_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "lock").write_text(json.dumps({"host": "elsewhere.invalid", "pid": dead_pid(), "started": "t"}))
    with pytest.raises(UserError, match=r"in use by modelswarm elsewhere\.invalid:\d+ \(since t\): it runs on "
                                        r"another host, which this one cannot check: if that process is gone, "
                                        r"delete this file"):
        RunLock(tmp_path).acquire()
    (tmp_path / "lock").write_text("{torn")
    with pytest.raises(UserError, match="unreadable lock file"):
        RunLock(tmp_path).acquire()


def test_of_processes_racing_for_a_run_directory_exactly_one_wins(tmp_path):
    go = time.time() + 3  # all of them import first, then start together
    code = ("import sys, time; from modelswarm.search.lock import RunLock; from modelswarm.errors import UserError\n"
            f"time.sleep(max(0, {go} - time.time()))\n"
            "try:\n"
            "    with RunLock(sys.argv[1]):\n"
            "        print('won', flush=True); time.sleep(3)\n"
            "except UserError as e:\n"
            "    print(e); sys.exit(2)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    winners = [p.pid for p, out in zip(procs, outs) if out.startswith("won")]
    assert len(winners) == 1, outs
    assert all(f":{winners[0]} " in out for out in outs if not out.startswith("won")), outs
    assert not (tmp_path / "lock").exists()


# --- a full disk --------------------------------------------------------------------------


def limited(max_bytes: int):
    """For the child: files may not grow past max_bytes (RLIMIT_FSIZE), and writing past it
    fails with EFBIG instead of killing the process with SIGXFSZ."""
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return preexec


def journal_lines(run_dir: Path) -> list[str]:
    text = (run_dir / "evaluations.jsonl").read_text()
    assert text.endswith("\n"), "the journal ends with a complete line"
    lines = text.splitlines()
    for line in lines:
        json.loads(line)
    return lines


@pytest.mark.slow
def test_a_full_disk_stops_the_run_cleanly_and_resume_finishes_it(world, ray_session, tmp_path):
    """A file size limit (EFBIG, as ENOSPC would) hits the journal, state.json, then best/:
    each time a one-line error naming the file and exit 2, the previous state.json and the
    journal's complete lines intact; `resume` without the limit ends where an undisturbed
    run ends. The runs join this test's Ray, so the limit binds only the driver."""
    address = ray_session.get_runtime_context().gcs_address
    shutil.copy(HERE / "flaky_utility.py", tmp_path / "flaky_utility.py")
    ctl = tmp_path / "ctl.jsonl"
    ctl.write_text(json.dumps({}) + "\n")
    over = dict(utility={"kind": "python", "data": str(ctl), "function": "flaky_utility:score", "test_data": None},
                swarm={"size": 4, "max_iterations": 5, "patience": 5}, workers={"count": 2})
    ref_cfg = write_config(tmp_path / "ref.yaml", world, tmp_path / "runs", name="ref", **over)
    reference = run_swarm(prepare(load_config(ref_cfg), ref_cfg), address=address, live=False)
    ref_dir = tmp_path / "runs" / "ref"
    ref_state = json.loads((ref_dir / "state.json").read_text())["swarm"]
    sizes = {p.name: p.stat().st_size for p in ref_dir.iterdir() if p.is_file()}
    lines = [len(l) + 1 for l in (ref_dir / "evaluations.jsonl").read_text().splitlines()]
    cumulative = [sum(lines[:k]) for k in range(len(lines) + 1)]
    small = max(sizes["config.yaml"], sizes["experts.json"])
    # journal: past every other file, half-way through a line of the search
    k = next(k for k in range(len(lines)) if cumulative[k] > max(small, sizes["state.json"]) + 200)
    assert k < len(lines) - 4, lines
    limits = {"evaluations.jsonl": cumulative[k] + lines[k] // 2,
              # state.json: past the journal up to the first snapshot, short of that snapshot
              # (the swarm of 4 with its first trace entry: well over 1 kB)
              "state.json": max(small, cumulative[4]) + 200,
              # best/: everything else fits, the exported adapter does not
              "best": max(sizes["evaluations.jsonl"], sizes["state.json"], sizes["summary.json"]) + 2000}
    assert limits["state.json"] > cumulative[4] + 100 and limits["state.json"] < sizes["state.json"] - 100, limits
    assert limits["best"] < (ref_dir / "best" / "adapter_model.safetensors").stat().st_size, limits
    for name, limit in limits.items():
        cfg = write_config(tmp_path / f"{name}.yaml", world, tmp_path / "runs", name=f"full-{name}", **over)
        run_dir = tmp_path / "runs" / f"full-{name}"
        r = cli("run", cfg, "--no-live", "--address", address, preexec_fn=limited(limit))
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        # Ray's driver complains on stderr that its own log file hit the limit too
        err = [l for l in r.stderr.strip().splitlines() if not (l.startswith("[*** LOG ERROR")
                                                                 and l.endswith(".log: File too large"))]
        assert len(err) == 1, r.stderr
        assert err[0] == (f"modelswarm: error: {run_dir / name}: file too large (the process's file size limit, "
                          "or the filesystem's largest file) while writing it; the run is saved up to its last "
                          f"complete step: free some space, then resume with `modelswarm resume {run_dir}`")
        assert journal_lines(run_dir)
        assert not list(run_dir.glob(".*.tmp")) and not (run_dir / "lock").exists()
        if name == "evaluations.jsonl":
            assert (run_dir / "state.json").exists()  # the snapshot before the failed append
        if name == "state.json":
            assert not (run_dir / "state.json").exists()  # never a torn one
        if name == "best":
            assert json.loads((run_dir / "state.json").read_text())["swarm"]["iteration"] == ref_state["iteration"]
            assert not (run_dir / "best").exists()
        # space is back (and a stale lock of a killed process lies there): resume finishes the run
        (run_dir / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "started": "t"}))
        r = cli("resume", run_dir, "--no-live", "--address", address)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "took over the lock" in r.stderr
        assert json.loads((run_dir / "state.json").read_text())["swarm"] == ref_state
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["best"] == reference["best"] and summary["history"] == reference["history"]
        assert (run_dir / "best" / "adapter_model.safetensors").is_file() and not (run_dir / "lock").exists()
