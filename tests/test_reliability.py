"""Nothing finished is lost or recomputed: kills, crashes, dead workers, bad scores."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from modelswarm.weights.compose import compose_numpy
from modelswarm.config import load_config
from modelswarm.run.prepare import prepare
from modelswarm.run.coordinator import run_swarm
from modelswarm.search.evaluations import start_pool
from modelswarm.cluster.dispatch import run_jobs
from modelswarm.cluster.jobs import Failure, Job
from modelswarm.search.state import RunDir
from modelswarm.cluster.worker import EvalResult

from conftest import write_config

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def flaky_config(tmp_path, world, ctl: dict, **over) -> Path:
    shutil.copy(HERE / "flaky_utility.py", tmp_path / "flaky_utility.py")
    data = tmp_path / "ctl.jsonl"
    data.write_text(json.dumps(ctl) + "\n")
    return write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                        utility={"kind": "python", "data": str(data), "function": "flaky_utility:score",
                                 "test_data": None}, **over)


def b_sum(bank, coeffs) -> float:
    parts = bank.layout.split(compose_numpy(bank.matrix, coeffs).astype(np.float64))
    return float(sum(v.sum() for k, v in parts.items() if "lora_B" in k))


def test_a_killed_worker_is_replaced_and_its_job_redispatched(world, ray_session, tmp_path):
    cfg_path = flaky_config(tmp_path, world, {"sleep": 0.4}, workers={"count": 2, "max_retries": 2})
    prep = prepare(load_config(cfg_path), cfg_path)
    pool = start_pool(prep)
    try:
        victim = ray_session.get(pool.actors[0].pid.remote(), timeout=60)
        rows = [tuple(r) for r in np.random.default_rng(0).normal(size=(6, 3))]
        results = {}
        threading.Timer(0.6, lambda: os.kill(victim, signal.SIGKILL)).start()
        run_jobs(pool, [Job(i, r) for i, r in enumerate(rows)], lambda job, res, actor: results.__setitem__(job.key, res))
        assert pool.restarted >= 1
        assert all(isinstance(results[i], EvalResult) for i in range(6))
        for i, r in enumerate(rows):
            assert results[i].score == pytest.approx(b_sum(prep.bank, r), abs=1e-4)
    finally:
        pool.shutdown()


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_short_evaluations_share_calls_but_a_failing_one_fails_alone(world, ray_session, tmp_path, mode):
    from modelswarm.weights.experts import load_bank

    bank = load_bank(str(world["experts"]))
    rows = [tuple(r) for r in np.random.default_rng(1).normal(size=(8, 3))]
    cfg_path = flaky_config(tmp_path, world, {"bad": [b_sum(bank, rows[2])], "mode": mode},
                            workers={"count": 2, "max_retries": 1})
    pool = start_pool(prepare(load_config(cfg_path), cfg_path))
    try:
        pool.recent.extend([0.001] * 8)  # as after a few short evaluations: several jobs per call (test_batching)
        results = {}
        run_jobs(pool, [Job(i, r) for i, r in enumerate(rows)], lambda job, res, actor: results.__setitem__(job.key, res))
        assert isinstance(results[2], Failure) and results[2].attempts == 2
        assert all(isinstance(results[i], EvalResult) for i in range(8) if i != 2)
    finally:
        pool.shutdown()


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_a_particle_that_always_fails_counts_as_not_evaluated_and_the_run_goes_on(world, ray_session, tmp_path, mode):
    from modelswarm.weights.experts import load_bank

    bank = load_bank(str(world["experts"]))
    bad = b_sum(bank, [0.0, 1.0, 0.0])  # the 'same' expert
    cfg_path = flaky_config(tmp_path, world, {"bad": [bad], "mode": mode},
                            swarm={"size": 4, "max_iterations": 2}, workers={"count": 2, "max_retries": 1})
    summary = run_swarm(prepare(load_config(cfg_path), cfg_path), live=False)
    assert summary["status"] == "finished"
    journal = [json.loads(l) for l in (tmp_path / "runs" / "t" / "evaluations.jsonl").read_text().splitlines()]
    failed = [e for e in journal if e["error"]]
    assert failed and all(e["score"] is None for e in failed)  # a failure is stored as null
    assert failed[0]["coeffs"] == [0.0, 1.0, 0.0]
    assert ("always fails" in failed[0]["error"]) if mode == "raise" else ("worker lost" in failed[0]["error"])
    assert "after 2 attempts" in failed[0]["error"]
    assert summary["baselines"]["val"]["expert same"] is None
    state = json.loads((tmp_path / "runs" / "t" / "state.json").read_text())["swarm"]
    assert state["gw"] != [0.0, 1.0, 0.0] and state["g"] != [0.0, 1.0, 0.0]  # never the global worst or best


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "modelswarm.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


def test_nan_scores_everywhere_is_a_clear_error(world, tmp_path):
    cfg_path = flaky_config(tmp_path, world, {"nan": True}, workers={"count": 1, "max_retries": 0})
    r = cli("run", cfg_path, "--no-live")
    assert r.returncode == 2
    assert "every initial expert failed to evaluate" in r.stderr and "NaN" in r.stderr


def assert_consistent(run_dir: Path, killed: bool = False) -> None:
    """Whatever the moment of the kill, every file in the run directory is whole. A kill can
    leave an atomic write's temporary file behind (never read; resume removes it)."""
    if (run_dir / "state.json").exists():
        json.loads((run_dir / "state.json").read_text())
    if (run_dir / "evaluations.jsonl").exists():
        lines = (run_dir / "evaluations.jsonl").read_text().split("\n")
        for line in lines[:-1]:
            json.loads(line)
    if (run_dir / "best").exists():
        from safetensors.torch import load_file

        assert (run_dir / "best" / "adapter_config.json").is_file()
        load_file(str(run_dir / "best" / "adapter_model.safetensors"))
    if (run_dir / "summary.json").exists():
        json.loads((run_dir / "summary.json").read_text())
    if not killed:
        assert not list(run_dir.glob(".*.tmp")), "no stray temporary files are left as if they were state"


def tagged_env() -> tuple[dict[str, str], str]:
    """The environment for a driver that kill_group may crash: its Ray processes inherit the
    tag, so kill_group finds them without touching any other Ray on the machine."""
    tag = uuid.uuid4().hex
    return {**os.environ, "MODELSWARM_TEST_TAG": tag}, tag


def kill_group(proc: subprocess.Popen, tag: str) -> None:
    """A crash: the driver, its local Ray, and the Ray workers (which live in sessions of
    their own, so killpg alone would leave them burning the CPUs while they notice)."""
    import psutil

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
    me = os.getpid()
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = p.info["cmdline"] or []
            if (cmd and cmd[0].startswith("ray::") and me not in [q.pid for q in p.parents()]
                    and p.environ().get("MODELSWARM_TEST_TAG") == tag):
                p.kill()
        except psutil.Error:
            pass


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(world, ray_session, tmp_path):
    over = dict(swarm={"size": 6, "max_iterations": 5, "patience": 5}, workers={"count": 2})
    reference = run_swarm(prepare(load_config(write_config(tmp_path / "ref.yaml", world, tmp_path / "runs",
                                                           name="ref", **over))), live=False)
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="killed", **over)
    run_dir = tmp_path / "runs" / "killed"
    rng = random.Random(1)
    journal_sizes = []
    for attempt in range(3):
        args = ["run", cfg, "--no-live"] if attempt == 0 else ["resume", run_dir, "--no-live"]
        env, tag = tagged_env()
        proc = subprocess.Popen([sys.executable, "-m", "modelswarm.cli", *map(str, args)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        journal = run_dir / "evaluations.jsonl"
        before = len(journal.read_text().splitlines()) if journal.exists() else 0
        target = before + rng.randint(1, 12)  # somewhere inside an iteration of 6 evaluations
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= target:
                break
            time.sleep(0.01)
        kill_group(proc, tag)
        assert_consistent(run_dir, killed=True)
        journal_sizes.append(len(journal.read_text().splitlines()))
    r = cli("resume", run_dir, "--no-live")
    assert r.returncode == 0, r.stderr
    assert_consistent(run_dir)  # the resume cleared any leftover temporary file
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best"] == reference["best"]
    assert summary["history"] == reference["history"]
    assert summary["top_k"] == reference["top_k"]
    ref_state = json.loads((tmp_path / "runs" / "ref" / "state.json").read_text())["swarm"]
    state = json.loads((run_dir / "state.json").read_text())["swarm"]
    assert state == ref_state  # positions, velocities, bests, RNG: all of it
    # finished evaluations were replayed, not recomputed: no hash appears twice in the journal
    lines = [json.loads(l) for l in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    keys = [(e["hash"], e["split"]) for e in lines]
    assert len(keys) == len(set(keys))
    assert journal_sizes == sorted(journal_sizes)


def test_ctrl_c_saves_state_and_prints_the_resume_command(world, tmp_path):
    # far more iterations than the signal gives it time for: a tiny evaluation takes ~10 ms,
    # and a run that finishes before Ctrl-C would exit 0
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="intr",
                       swarm={"size": 6, "max_iterations": 100000, "patience": 100000})
    run_dir = tmp_path / "runs" / "intr"
    # as from a terminal: a suite started in the background (`cmd &` in a script) passes
    # SIGINT down ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "modelswarm.cli", "run", str(cfg), "--no-live"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    journal = run_dir / "evaluations.jsonl"
    while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 12):
        time.sleep(0.05)  # Ctrl-C in the middle of the search: past start-up, two iterations journaled
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"modelswarm resume {run_dir}" in out
    state = json.loads((run_dir / "state.json").read_text())
    assert state["swarm"]["started"]
    assert_consistent(run_dir)


def test_resume_removes_the_temporary_files_of_interrupted_writes(tmp_path):
    from modelswarm.search.state import RunDir

    (tmp_path / ".state.json.x1.tmp").write_text("{half")
    (tmp_path / ".best.x2.tmp").mkdir()
    (tmp_path / "state.json").write_text("{}")
    RunDir(tmp_path).drop_leftovers()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_torn_journal_tail_is_dropped(tmp_path):
    from modelswarm.search.state import Evaluation

    rd = RunDir(tmp_path)
    ev = Evaluation.from_dict(dict(iteration=0, particle=0, hash="abc", coeffs=[1.0, 0.0], score=0.5, seconds=0.1,
                                   worker="w"))
    rd.append(ev)
    with open(rd.journal_file, "a") as f:
        f.write('{"iteration": 1, "partic')  # the process died mid-write
    assert rd.read_journal() == [ev]
    rd.append(ev)
    assert rd.read_journal() == [ev, ev]


def test_corrupt_journal_line_is_named(tmp_path):
    from modelswarm.errors import UserError

    rd = RunDir(tmp_path)
    rd.journal_file.write_text("not json\n")
    with pytest.raises(UserError, match=r"evaluations.jsonl:1: corrupt journal line"):
        rd.read_journal()


def test_resume_refuses_a_changed_expert_set(world, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="x")
    run_dir = tmp_path / "runs" / "x"
    RunDir(run_dir).create(load_config(cfg), ("a", "b"), ("a", "b"))
    r = cli("resume", run_dir)
    assert r.returncode == 2 and "was started with experts ['a', 'b']" in r.stderr


def test_a_failure_is_retried_after_a_resume_never_replayed(tmp_path):
    from modelswarm.search.evaluations import Evaluations
    from modelswarm.search.state import Evaluation

    rd = RunDir(tmp_path)
    rd.append(Evaluation.from_dict(dict(iteration=1, particle=0, hash="ok", coeffs=[1.0, 0.0], score=0.5, seconds=0.1)))
    rd.append(Evaluation.from_dict(dict(iteration=1, particle=1, hash="bad", coeffs=[0.0, 1.0], score=None,
                                       seconds=0.0, error="RuntimeError: boom (after 3 attempts)")))
    cache = Evaluations(rd, pool_factory=lambda: None).cache
    assert set(cache) == {"val:ok"}


@pytest.mark.parametrize("score", [float("inf"), float("-inf"), 0.25])
def test_scores_survive_the_journal_round_trip(tmp_path, score):
    from modelswarm.search.state import Evaluation

    rd = RunDir(tmp_path)
    ev = Evaluation.from_dict(dict(iteration=1, particle=0, hash="h", coeffs=[1.0], score=score, seconds=0.1))
    rd.append(ev)
    assert rd.read_journal() == [ev]
    assert "Infinity" not in rd.journal_file.read_text()  # plain JSON, which has no infinity
